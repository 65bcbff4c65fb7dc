"""data of semflow_ns."""
