"""utils of semflow_ns."""
