"""model_components of semflow_ns."""
