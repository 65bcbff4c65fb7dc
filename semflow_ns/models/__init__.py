"""The Semantic Flow models: one scene (:mod:`semflow_model`, options in :mod:`model_config`) and several scenes."""
