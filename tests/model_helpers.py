"""Helpers of the in-process model tests (``tests/`` is on ``sys.path`` while they run)."""

from semflow_ns.fields.encoding import PlaneEncodingConfig


def shrink_model(model) -> None:
    """Makes a semantic-flow model config tiny (few samples, 8-cell grids, narrow MLPs) for in-process tests."""
    model.num_proposal_samples, model.num_samples, model.semantic_samples = 12, 6, 3
    small = PlaneEncodingConfig(resolutions=(8,), num_components=4)
    for field_config in (model.static_field, model.dynamic_field):
        field_config.planes, field_config.hidden_dim, field_config.feature_dim = small, 16, 7
    model.scene_flow.planes, model.proposal_planes = small, small
