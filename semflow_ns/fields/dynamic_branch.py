"""The dynamic branch of Semantic Flow: everything that depends on time, as one module (paper §3).

:class:`DynamicBranch` owns the dynamic radiance field, the scene-flow field, the trajectory integration, the
flow feature aggregation (frame encoder and projections), the flow attention and the dynamic semantic head.
The model calls it in three ways:

- ``branch(unit, times)`` (:meth:`DynamicBranch.forward`): the dynamic field, the scene flow and the
  trajectory over the K frames t-h .. t+h (Euler steps) at normalised positions and times: a
  :class:`~semflow_ns.model_components.dynamic_query.DynamicQuery`;
- :meth:`DynamicBranch.warped_queries` (training): the samples of a random subset of the rays warped to t+1
  and t-1 by the scene flow and queried there, both directions in one call;
- :meth:`DynamicBranch.logits`: the semantic branch (frame features along each trajectory, flow attention,
  the semantic head) on chosen samples of one or several queries, in **one** pass, so that the frame encoder
  runs once per step on every frame the step needs; :meth:`DynamicBranch.warped_renders` then renders the
  warped queries for the losses.

The branch holds the model's scene normaliser, video timeline and video cameras (shared submodules without
parameters of their own) and never the model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Optional

import torch
from jaxtyping import Float, Int, UInt8
from nerfstudio.cameras.rays import RaySamples
from torch import Tensor, nn

from semflow_ns.field_components.flow_aggregation import FlowFeatureAggregator, VideoCameras
from semflow_ns.field_components.flow_attention import FlowAttention
from semflow_ns.field_components.frame_encoder import FrameFeatureBank
from semflow_ns.field_components.scene_flow import SceneFlow, SceneFlowField
from semflow_ns.field_components.semantic_head import SemanticHead
from semflow_ns.field_components.timeline import VideoTimeline
from semflow_ns.fields.encoding import SceneNormalizer
from semflow_ns.fields.radiance_field import RadianceField
from semflow_ns.model_components.dynamic_query import (
    DynamicQuery,
    HeadSamples,
    semantic_sample_index,
    split_query,
    take_samples,
)
from semflow_ns.model_components.losses import token_consistency_loss
from semflow_ns.model_components.rendering import composite, expected_point, render_logits
from semflow_ns.model_components.warping import WarpedRender, WarpedRenders

if TYPE_CHECKING:
    from semflow_ns.models.model_config import SemanticFlowModelConfig

LEGACY_STATE_KEYS: dict[str, str] = {
    "dynamic_field.": "dynamic.field.",
    "scene_flow.": "dynamic.scene_flow.",
    "aggregator.": "dynamic.aggregator.",
    "attention.": "dynamic.attention.",
    "semantic_head.": "dynamic.semantic_head.",
}
"""Checkpoint key prefixes of models saved before the branch was one module -> their keys now."""


def upgrade_state_keys(state: dict[str, Tensor], prefix: str = "") -> dict[str, Tensor]:
    """``state`` with keys of the old layout (:data:`LEGACY_STATE_KEYS`, after ``prefix``) renamed."""
    upgraded = {}
    for key, value in state.items():
        rest = key[len(prefix) :] if key.startswith(prefix) else None
        if rest is not None:
            old = next((o for o in LEGACY_STATE_KEYS if rest.startswith(o)), None)
            if old is not None:
                key = prefix + LEGACY_STATE_KEYS[old] + rest[len(old) :]
        upgraded[key] = value
    return upgraded


class WarpedQueries(NamedTuple):
    """The samples of some rays warped to t+1 and t-1 and queried there (training)."""

    rays: Int[Tensor, "num_warped"]
    """The rays warped (a random subset of the batch)."""
    query: DynamicQuery
    """One query over ``2 * num_warped`` rays: the t+1 rays, then the t-1 rays."""
    weights: Float[Tensor, "two_num_warped num_samples 1"]
    """Compositing weights of the dynamic field at the warped samples."""


class DynamicBranch(nn.Module):
    """See the module docstring.

    Args:
        config: the model's options (fields, scene flow, encoder, attention, semantic switches).
        normalizer: world <-> normalised coordinates of the scene.
        timeline: the video's frame times.
        cameras: the video's cameras (with the model's pose corrections).
        frames: the video frames, for the frame encoder (unused with ``semantic_source`` point).
        num_logits: class logits plus instance logits of the semantic head.
    """

    def __init__(
        self,
        config: SemanticFlowModelConfig,
        normalizer: SceneNormalizer,
        timeline: VideoTimeline,
        cameras: VideoCameras,
        frames: Optional[UInt8[Tensor, "num_frames H W 3"]],
        num_logits: int,
        labelled: Optional[list[bool]] = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.normalizer = normalizer
        self.timeline = timeline
        num_frames = timeline.num_frames
        # frames whose labels training uses: their windows keep the empty tokens they were trained with
        trained = (
            torch.tensor(labelled, dtype=torch.bool)
            if labelled is not None
            else torch.zeros(num_frames, dtype=torch.bool)
        )
        self.register_buffer("labelled_frames", trained, persistent=False)
        self.field = RadianceField(config.dynamic_field, time_dependent=True, num_frames=num_frames)
        self.scene_flow = SceneFlowField(config.scene_flow, num_frames=num_frames, grid_coords=normalizer.flow_coords)
        self.half_window = config.scene_flow.window // 2
        uses_flow = config.semantic_source == "flow"
        head_in = config.dynamic_field.feature_dim if config.semantic_field_features or not uses_flow else 0
        self.aggregator: Optional[FlowFeatureAggregator] = None
        self.attention: Optional[FlowAttention] = None
        if uses_flow:
            if frames is None:
                raise ValueError("semantic-source flow needs the video frames for the frame encoder")
            self.aggregator = FlowFeatureAggregator(cameras, FrameFeatureBank(config.encoder, frames))
            self.attention = FlowAttention(config.attention, config.encoder.feature_dim, config.scene_flow.window)
            head_in += self.attention.get_out_dim()
        self.semantic_head = SemanticHead(head_in, num_logits, config.semantic_hidden_dim)
        self.num_logits = num_logits
        self.token_consistency: Optional[Tensor] = None
        """The token-consistency loss of the last training pass of :meth:`logits` (None when off)."""

    # ------------------------------------------------------------------------------------------
    # the dynamic query

    def forward(self, unit: Float[Tensor, "*bs 3"], times: Float[Tensor, "*bs 1"]) -> DynamicQuery:
        """Dynamic field, scene flow and trajectory at normalised positions and times."""
        frames = self.timeline.nearest_frame(times)
        flow = self.scene_flow(unit, times)
        radiance = self.field(self.normalizer.grid_coords(unit), times)
        return DynamicQuery(unit, radiance, flow, self.trajectory(unit, times, frames, flow), frames)

    def trajectory(
        self,
        unit: Float[Tensor, "*bs 3"],
        times: Float[Tensor, "*bs 1"],
        frames: Int[Tensor, "*bs"],
        flow: SceneFlow,
    ) -> Float[Tensor, "*bs num_frames 3"]:
        """Positions over t-h .. t+h by integrating the scene flow frame by frame (Euler steps)."""
        points = {0: unit}
        for direction in (1, -1):
            cur, cur_times, cur_frames, first = unit, times, frames, flow
            for k in range(1, self.half_window + 1):
                interval = self.timeline.interval(cur_frames, direction)
                cur = self.scene_flow.step(cur, cur_times, interval, direction, first=first)
                cur_times, cur_frames, first = cur_times + direction * interval, cur_frames + direction, None
                points[direction * k] = cur
        return torch.stack([points[k] for k in range(-self.half_window, self.half_window + 1)], dim=-2)

    # ------------------------------------------------------------------------------------------
    # semantics

    def semantic_input(
        self, samples: HeadSamples, fresh: Optional[Int[Tensor, "num_fresh"]] = None
    ) -> Float[Tensor, "num_kept out_dim"]:
        """Flow feature aggregation + flow attention over the trajectory tokens (paper §3.2); ``fresh``: the frames
        whose features are computed with gradients in training (see
        :class:`~semflow_ns.field_components.frame_encoder.FrameFeatureBank`)."""
        return self._semantic_input(samples, fresh)[0]

    def _semantic_input(
        self, samples: HeadSamples, fresh: Optional[Int[Tensor, "num_fresh"]] = None
    ) -> tuple[Float[Tensor, "num_kept out_dim"], Float[Tensor, "num_kept window feat_dim"], Tensor]:
        """:meth:`semantic_input`, with the frame features along each trajectory and their validity flags."""
        assert self.aggregator is not None and self.attention is not None
        unit, points = samples.unit, samples.trajectory
        if self.config.detach_trajectory_features:
            points = points.detach()
        offsets = torch.arange(-self.half_window, self.half_window + 1, device=unit.device)
        token_frames, exists = self.timeline.neighbour(samples.frames[..., None], offsets)
        feats, valid = self.aggregator(self.normalizer.to_world(points), token_frames, exists, fresh)
        displacement = torch.cat(
            [points - unit[..., None, :], offsets.to(unit.dtype).expand(*token_frames.shape)[..., None]], dim=-1
        )
        # mirrored at the video's ends only where the empty slots were not trained with labels
        not_mirrored = exists | self.labelled_frames[samples.frames][..., None]
        return self.attention(feats, valid, displacement, not_mirrored), feats, valid

    def head(
        self, samples: HeadSamples, fresh: Optional[Int[Tensor, "num_fresh"]] = None
    ) -> Float[Tensor, "num_kept num_logits"]:
        """Semantic head on gathered samples (paper §3.3)."""
        return self._head(samples, fresh)[0]

    def _head(
        self, samples: HeadSamples, fresh: Optional[Int[Tensor, "num_fresh"]] = None
    ) -> tuple[Float[Tensor, "num_kept num_logits"], Optional[tuple[Tensor, Tensor]]]:
        """:meth:`head`, with the frame features along each trajectory and their validity (flow semantics)."""
        if self.config.semantic_source != "flow":
            return self.semantic_head(samples.features), None
        flow, feats, valid = self._semantic_input(samples, fresh)
        inputs = torch.cat([flow, samples.features], dim=-1) if self.config.semantic_field_features else flow
        return self.semantic_head(inputs), (feats, valid)

    def logits(
        self, *requests: tuple[DynamicQuery, Tensor], fresh: Optional[Int[Tensor, "num_fresh"]] = None
    ) -> list[Tensor]:
        """Semantic (and instance) logits ``[num_rays, num_samples, num_logits]`` at every sample of each query;
        zero where the head did not run.

        Each request is a query and the weights ``[num_rays, num_samples, 1]`` that choose its samples (see
        :func:`~semflow_ns.model_components.dynamic_query.semantic_sample_index`); the zero logits of the
        others contribute nothing to a render. All requests go through the semantic branch together. In
        training, ``fresh`` names the frames (the batch's own) whose features are computed with gradients; the
        others take recent features (see :class:`~semflow_ns.field_components.frame_encoder.FrameFeatureBank`).
        """
        keep, training = self.config.semantic_samples, self.training
        indices = [semantic_sample_index(weights, keep, training) for _, weights in requests]
        samples = [take_samples(query, index) for (query, _), index in zip(requests, indices, strict=True)]
        counts = [index.numel() for index in indices]
        outputs = []
        gathered = HeadSamples(*(torch.cat(parts) for parts in zip(*samples, strict=True)))
        tokens = None
        if sum(counts):
            head_out, tokens = self._head(gathered, fresh)
        else:
            head_out = gathered.features.new_zeros(0, self.num_logits)
        self.token_consistency = None
        if training and self.config.token_consistency_loss_mult > 0 and tokens is not None:
            self.token_consistency = self._token_consistency(tokens, requests[0][1])
        for (_, weights), index, part in zip(requests, indices, head_out.split(counts), strict=True):
            num_rays, num_samples = weights.shape[:2]
            logits = weights.new_zeros(num_rays * num_samples, self.num_logits)
            if index.numel():
                logits = logits.index_put((index,), part)
            outputs.append(logits.view(num_rays, num_samples, -1))
        return outputs

    def _token_consistency(
        self, tokens: tuple[Tensor, Tensor], weights: Float[Tensor, "num_rays num_samples 1"]
    ) -> Tensor:
        """The token-consistency loss on the most visible semantic sample of up to ``token_consistency_rays`` rays
        of the first request (training: its samples come first in the pass, the same number per ray, and with
        fewer than all samples per ray the most visible first; see ``semantic_sample_index``)."""
        feats, valid = tokens
        num_rays, num_samples = weights.shape[:2]
        keep = self.config.semantic_samples
        per_ray = keep if 0 < keep < num_samples else num_samples
        rays = torch.randperm(num_rays, device=weights.device)[: self.config.token_consistency_rays]
        best = 0 if per_ray < num_samples else weights[rays, :, 0].detach().argmax(dim=-1)
        rows = rays * per_ray + best
        return token_consistency_loss(
            feats[rows], valid[rows], self.half_window, self.config.token_consistency_temperature
        )

    # ------------------------------------------------------------------------------------------
    # warped renders (training)

    def warped_queries(
        self, ray_samples: RaySamples, times: Float[Tensor, "num_rays num_samples 1"], query: DynamicQuery
    ) -> WarpedQueries:
        """Queries the samples of a random ``warped_ray_fraction`` of the rays at t+1 and at t-1 (one call)."""
        num_rays = ray_samples.shape[0]
        keep = max(1, round(num_rays * self.config.warped_ray_fraction))
        rays = torch.randperm(num_rays, device=times.device)[:keep]
        units, warped_times = [], []
        for direction in (1, -1):
            interval = self.timeline.interval(query.frames[rays], direction)
            units.append(query.trajectory[rays, :, self.half_window + direction, :])
            warped_times.append(times[rays] + direction * interval)
        warped = self(torch.cat(units), torch.cat(warped_times))
        weights = ray_samples[torch.cat([rays, rays])].get_weights(warped.radiance.density)
        return WarpedQueries(rays, warped, weights)

    def warped_renders(
        self,
        warped: WarpedQueries,
        query: DynamicQuery,
        weights_dynamic: Float[Tensor, "num_rays num_samples 1"],
        logits: Float[Tensor, "two_num_warped num_samples num_logits"],
    ) -> WarpedRenders:
        """Renders of the warped queries (with their ``logits``), and the expected warped point of every ray."""
        rays = warped.rays
        ray_frames = query.frames[:, 0]
        parts = zip(split_query(warped.query, 2), warped.weights.chunk(2), logits.chunk(2), strict=True)
        renders = {}
        for direction, (part, weights, part_logits) in zip((1, -1), parts, strict=True):
            neighbour, exists = self.timeline.neighbour(ray_frames, direction)
            warped_unit = query.trajectory[..., self.half_window + direction, :]
            points, flow_valid = expected_point(
                weights_dynamic, self.normalizer.to_world(warped_unit), self.config.flow_min_accumulation
            )
            # one more step from the warped samples, with the flow the warped query already evaluated there
            onward = self.normalizer.to_world(warped_unit[rays] + part.flow.toward(direction))
            points_two, flow_valid_two = expected_point(
                weights_dynamic[rays], onward, self.config.flow_min_accumulation
            )
            neighbour_two, exists_two = self.timeline.neighbour(ray_frames[rays], 2 * direction)
            renders[direction] = WarpedRender(
                neighbour=neighbour,
                exists=exists[:, None].float(),
                points=points,
                flow_valid=flow_valid,
                rgb=composite(weights, part.radiance.rgb),
                label_logits=render_logits(weights, part_logits, self.config.detach_semantic_weights),
                flow_there=query.flow.toward(direction)[rays],
                flow_back=part.flow.toward(-direction),
                flow=part.flow,
                neighbour_two=neighbour_two,
                exists_two=exists_two[:, None].float(),
                points_two=points_two,
                flow_valid_two=flow_valid_two,
            )
        return WarpedRenders(rays=rays, next=renders[1], prev=renders[-1], frames=ray_frames)
