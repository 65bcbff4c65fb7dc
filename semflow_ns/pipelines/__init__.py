"""The multi-scene pipeline (per-scene evaluation metrics)."""
