"""scripts of semflow_ns."""
