"""Helpers of the in-process model tests (``tests/`` is on ``sys.path`` while they run)."""

from pathlib import Path
from typing import Optional

from semflow_ns.configs.method_configs import semantic_flow_config
from semflow_ns.fields.encoding import PlaneEncodingConfig


def shrink_model(model) -> None:
    """Makes a semantic-flow model config tiny (few samples, 8-cell grids, narrow MLPs) for in-process tests."""
    model.num_proposal_samples, model.num_samples, model.semantic_samples, model.render_samples = 12, 6, 3, 8
    small = PlaneEncodingConfig(resolutions=(8,), num_components=4)
    for field_config in (model.static_field, model.dynamic_field):
        field_config.planes, field_config.hidden_dim, field_config.feature_dim = small, 16, 7
    model.scene_flow.planes, model.proposal_planes = small, small


def tiny_pipeline(scene: Path, dataparser: Optional[dict] = None, **model_overrides):
    """(config, pipeline) of a tiny semantic-flow model on ``scene`` (64 rays per batch, CPU); ``dataparser``:
    dataparser options to set (e.g. ``{"withheld_frames": "every:4"}``)."""
    config = semantic_flow_config()
    config.pipeline.datamanager.dataparser.data = scene
    for key, value in (dataparser or {}).items():
        setattr(config.pipeline.datamanager.dataparser, key, value)
    config.pipeline.datamanager.train_num_rays_per_batch = 64
    model = config.pipeline.model
    shrink_model(model)
    for key, value in model_overrides.items():
        setattr(model, key, value)
    return config, config.pipeline.setup(device="cpu", test_mode="val", world_size=1, local_rank=0)
