"""fields of semflow_ns."""
