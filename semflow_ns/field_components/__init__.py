"""field_components of semflow_ns."""
