"""nerfstudio viewer integration of semflow_ns (the "Semantic Flow" panel)."""
