"""Evaluation helpers beyond the model: 2D baselines scored like the model."""
