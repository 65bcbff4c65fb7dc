"""Semantic Flow model (Tian et al., ICLR 2024) on grid encodings, for nerfstudio.

Shape vocabulary: ``num_rays``, ``num_samples`` along a ray, ``num_frames`` = K tokens of a
trajectory window, ``feat_dim``, ``num_classes``; ``*bs`` for leading batch dims.

Per ray batch (:meth:`SemanticFlowModel.get_outputs`):
1. samples from nerfstudio's proposal sampler (time-aware proposal densities);
2. the static field at every sample; the *dynamic query* at every sample: dynamic field, scene flow,
   trajectory over K frames, frame features along it (flow feature aggregation), flow attention and
   the semantic head;
3. DynNeRF blending of static and dynamic parts for colour, semantic logits and depth;
4. in training, the dynamic query again at the samples warped to t-1 and t+1, for the warped colour,
   semantic-consistency, cycle-consistency and optical-flow losses.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal, NamedTuple, Optional

import numpy as np
import torch
from jaxtyping import Float, Int, Shaped
from nerfstudio.cameras.camera_optimizers import CameraOptimizer
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.cameras.rays import RayBundle, RaySamples
from nerfstudio.data.dataparsers.base_dataparser import Semantics
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackAttributes, TrainingCallbackLocation
from nerfstudio.model_components.losses import distortion_loss, interlevel_loss
from nerfstudio.model_components.ray_samplers import (
    ProposalNetworkSampler,
    UniformLinDispPiecewiseSampler,
    UniformSampler,
)
from nerfstudio.model_components.renderers import DepthRenderer
from nerfstudio.model_components.scene_colliders import NearFarCollider
from nerfstudio.models.base_model import Model, ModelConfig
from nerfstudio.utils import colormaps
from nerfstudio.utils.rich_utils import CONSOLE
from PIL import Image
from torch import Tensor
from torch.nn import Parameter
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from semflow_ns.data.video import SceneInfo, VideoFrames
from semflow_ns.field_components.flow_aggregation import FlowFeatureAggregator, VideoCameras
from semflow_ns.field_components.flow_attention import FlowAttention, FlowAttentionConfig
from semflow_ns.field_components.frame_encoder import FrameEncoderConfig, FrameFeatureBank
from semflow_ns.field_components.scene_flow import SceneFlow, SceneFlowField, SceneFlowFieldConfig
from semflow_ns.field_components.semantic_head import SemanticHead
from semflow_ns.field_components.timeline import VideoTimeline
from semflow_ns.fields.density_field import ProposalDensityField
from semflow_ns.fields.encoding import PlaneEncodingConfig, SceneNormalizer
from semflow_ns.fields.radiance_field import RadianceField, RadianceFieldConfig, RadianceSamples
from semflow_ns.model_components import losses
from semflow_ns.model_components import metrics as segmentation
from semflow_ns.model_components.adaptation import AdaptationConfig, freeze_parts, load_parts
from semflow_ns.model_components.editing import SceneEdit, highlight, removal_keep
from semflow_ns.model_components.metrics import semantic_metrics
from semflow_ns.model_components.pose_refinement import (
    PoseRefinementConfig,
    corrected_rays,
    is_refining,
    refine_camera,
    video_frames_of,
)
from semflow_ns.model_components.render_times import RenderTimes
from semflow_ns.model_components.rendering import (
    BlendedWeights,
    blended_weights,
    composite,
    expected_point,
    induced_flow,
)
from semflow_ns.utils.colors import flow_to_rgb, instance_palette
from semflow_ns.viewer.panel import build_panel

MIN_OPACITY = 1e-4
"""Dynamic samples with a lower opacity α_d get no semantic prediction at render time (zero logits)."""


@dataclass
class SemanticFlowModelConfig(ModelConfig):
    """Semantic Flow: static + dynamic radiance fields, scene flow, flow attention, semantic heads."""

    _target: type = field(default_factory=lambda: SemanticFlowModel)
    near_plane: float = 0.05
    """Where sampling starts along a ray (world units), unless the scene gives `near`."""
    far_plane: float = 10.0
    """Where sampling ends (world units), unless the scene gives `far`."""
    scene_contraction: bool = False
    """Contract space outside the scene box; on automatically for scenes marked `unbounded` (real videos)."""
    unbounded_far_plane: float = 1000.0
    """Far plane of contracted (unbounded) scenes; samples beyond the box are spaced in disparity."""
    background_color: Literal["black", "white"] = "black"
    """Colour behind the last sample."""
    num_proposal_samples: int = 64
    """Samples per ray for the proposal density."""
    num_samples: int = 24
    """Samples per ray for the static and dynamic fields."""
    proposal_planes: PlaneEncodingConfig = field(
        default_factory=lambda: PlaneEncodingConfig(resolutions=(64,), num_components=8)
    )
    """Grid of the proposal density field."""
    proposal_warmup: int = 500
    """Steps over which proposal updates go from every step to every `proposal_update_every` steps."""
    proposal_update_every: int = 5
    """Proposal sampler update interval after warm-up."""
    static_field: RadianceFieldConfig = field(default_factory=RadianceFieldConfig)
    """Static radiance field (time independent)."""
    dynamic_field: RadianceFieldConfig = field(default_factory=RadianceFieldConfig)
    """Dynamic radiance field (time dependent, with blending weight)."""
    scene_flow: SceneFlowFieldConfig = field(default_factory=SceneFlowFieldConfig)
    """Scene-flow field and trajectory window."""
    encoder: FrameEncoderConfig = field(default_factory=FrameEncoderConfig)
    """CNN producing the per-frame features (trained from scratch)."""
    attention: FlowAttentionConfig = field(default_factory=FlowAttentionConfig)
    """Flow attention over trajectory tokens."""
    semantic_source: Literal["flow", "point"] = "flow"
    """flow: semantic head sees flow-aggregated features (the method); point: only the point's own
    field features (the paper's "dynamic NeRF + semantic head" baseline)."""
    semantic_hidden_dim: int = 64
    """Width of the semantic heads."""
    semantic_samples: int = 8
    """In training, the dynamic semantic branch (feature aggregation, attention, head) runs on this many
    samples per ray, those with the largest rendering weights; their weights carry almost all of the
    rendered logits. 0 = every sample. Evaluation always uses every sample."""
    warped_ray_fraction: float = 0.25
    """Fraction of each batch's rays whose samples are warped to t-1 and t+1 and rendered there (warped colour,
    semantic consistency, cycle consistency). Each costs two more dynamic queries; 1.0 = every ray."""
    detach_trajectory_features: bool = False
    """Stop the semantic branch's gradient at the trajectory: features are sampled at, and displacements encoded
    from, detached trajectory points, so semantic losses reach the scene flow only through the renders from
    warped samples (semantic consistency). True is what the official code does (it detaches the sampled
    features); the frame encoder learns either way."""
    adaptation: AdaptationConfig = field(default_factory=AdaptationConfig)
    """Start from another run's frame encoder, attention and semantic heads (scene adaptation)."""
    detach_semantic_weights: bool = False
    """Detach the density weights when rendering logits (False = the paper's density-as-opacity prior)."""
    rgb_loss_mult: float = 3.0
    """Colour of the full (blended) render."""
    rgb_dynamic_loss_mult: float = 1.0
    """Colour of the dynamic field alone."""
    rgb_static_loss_mult: float = 1.0
    """Colour of the static field alone, on static pixels (the paper's stage-1 loss)."""
    rgb_warped_loss_mult: float = 1.0
    """Colour of the dynamic field rendered from samples warped to t-1 and t+1, against frame t (each)."""
    semantic_loss_mult: float = 0.16
    """Cross entropy of the full semantic render."""
    semantic_dynamic_loss_mult: float = 0.08
    """Cross entropy of the dynamic field's semantic render (all pixels)."""
    semantic_static_loss_mult: float = 0.08
    """Cross entropy of the static field's semantic render, on static pixels."""
    semantic_consistency_loss_mult: float = 0.1
    """Cross entropy of semantics rendered from samples warped to t-1 and t+1 against frame t's labels (each)."""
    optical_flow_loss_mult: float = 0.02
    """L1 (pixels) between induced and estimated optical flow, each direction."""
    flow_min_accumulation: float = 0.05
    """Rays whose dynamic weights sum to at most this are left out of the optical-flow loss; on the others the
    induced flow follows the weighted mean of the warped points (normalised by the accumulated weight)."""
    cycle_loss_mult: float = 1.0
    """Forward-backward cycle consistency of the scene flow."""
    slow_flow_loss_mult: float = 0.01
    """Scene-flow magnitude."""
    temporal_smooth_loss_mult: float = 0.1
    """Scene-flow acceleration (forward + backward)."""
    spatial_smooth_loss_mult: float = 0.1
    """Scene-flow differences between neighbouring samples on a ray."""
    static_flow_loss_mult: float = 0.5
    """Rendered scene-flow magnitude (L1, normalised units) on pixels of static classes: they do not move."""
    blend_loss_mult: float = 0.1
    """Rendered dynamic mask against the motion mask of the labels."""
    sparsity_loss_mult: float = 0.001
    """Entropy of the dynamic weights and of the blending weights."""
    interlevel_loss_mult: float = 1.0
    """Proposal sampler fit (nerfstudio's interlevel loss)."""
    distortion_loss_mult: float = 0.002
    """Distortion loss on the final weights (mip-NeRF 360)."""
    instance_loss_mult: float = 0.08
    """Cross entropy of rendered instance ids, full and dynamic renders (scenes with instance labels)."""
    eval_foreground_only: bool = False
    """Score semantics with every static class merged into class 0 (the paper's foreground protocol)."""
    default_render_time: float = 0.0
    """Time in [0, 1] at which cameras without times are rendered (nerfstudio 1.1.5's `ns-render interpolate`
    drops them); camera times outside [0, 1] are clamped. Either is reported once per model."""
    remove_classes: tuple[str, ...] = ()
    """Render-time edit (viewer, ns-render, ns-eval, exports; never training): classes removed from the scene.
    `semflow-render --remove-classes` sets it for one render; the viewer panel changes it live."""
    remove_instances: tuple[str, ...] = ()
    """Render-time edit: instances (names or ids) removed from the scene."""
    highlight_classes: tuple[str, ...] = ()
    """Render-time edit: if set, everything but these classes is dimmed in `rgb`."""
    camera_optimizer: PoseRefinementConfig = field(default_factory=PoseRefinementConfig)
    """Refinement of the video's camera poses in training (nerfstudio's camera optimizer; param group
    `camera_opt`). Mode auto (default): SO3xR3 for scenes marked `approximate_poses`, off otherwise."""


class DynamicQuery(NamedTuple):
    """Everything the dynamic part predicts at a set of samples, except semantics."""

    unit: Float[Tensor, "*bs 3"]
    """Normalised positions of the samples."""
    radiance: RadianceSamples
    flow: SceneFlow
    trajectory: Float[Tensor, "*bs num_frames 3"]
    """Normalised positions of the sample over the window t-h .. t+h."""
    frames: Int[Tensor, "*bs"]
    """Video frame nearest to each sample's time."""


class RenderWeights(NamedTuple):
    """Compositing weights of the blended render and of each field alone."""

    blended: BlendedWeights
    static: Float[Tensor, "num_rays num_samples 1"]
    dynamic: Float[Tensor, "num_rays num_samples 1"]


class SemanticFlowModel(Model):
    """See :class:`SemanticFlowModelConfig` and the module docstring.

    The semantic heads output ``num_classes`` class logits followed, when the scene has instance
    labels, by ``num_instance_ids`` instance logits (ids 0..max id, 0 = no instance); both are
    volume-rendered the same way.
    """

    config: SemanticFlowModelConfig

    def populate_modules(self) -> None:
        super().populate_modules()
        metadata = self.kwargs.get("metadata", {})
        video: VideoFrames = metadata["semflow_video"]
        self.scene_info: SceneInfo = metadata["semflow_scene"]
        semantics: Semantics = metadata["semantics"]
        self.class_names = list(semantics.classes)
        self.register_buffer("class_colors", semantics.colors.float().clone(), persistent=False)
        num_frames = len(video)
        self.num_classes = len(self.class_names)
        self.num_instance_ids = max((i.id for i in self.scene_info.instances), default=-1) + 1
        self.register_buffer("instance_colors", instance_palette(max(self.num_instance_ids, 1)), persistent=False)
        self.edit = SceneEdit()
        num_logits = self.num_classes + self.num_instance_ids
        cfg = self.config

        near, far = self.scene_info.near_far((cfg.near_plane, cfg.far_plane))
        unbounded = cfg.scene_contraction or self.scene_info.unbounded
        if unbounded:  # contracted space reaches infinity: sample far beyond the scene's far bound
            far = max(far, cfg.unbounded_far_plane)
        self.collider = NearFarCollider(near_plane=near, far_plane=far)
        self.normalizer = SceneNormalizer(self.scene_box, contract=unbounded)
        self.timeline = VideoTimeline(video.times)
        self.proposal_field = ProposalDensityField(cfg.proposal_planes, self.normalizer, num_frames)
        self.proposal_sampler = ProposalNetworkSampler(
            num_nerf_samples_per_ray=cfg.num_samples,
            num_proposal_samples_per_ray=(cfg.num_proposal_samples,),
            num_proposal_network_iterations=1,
            single_jitter=False,
            update_sched=lambda step: int(
                np.clip(np.interp(step, [0, cfg.proposal_warmup], [1, cfg.proposal_update_every]), 1, None)
            ),
            initial_sampler=UniformLinDispPiecewiseSampler(single_jitter=False)
            if unbounded
            else UniformSampler(single_jitter=False),
        )
        self.static_field = RadianceField(cfg.static_field, time_dependent=False)
        self.dynamic_field = RadianceField(cfg.dynamic_field, time_dependent=True, num_frames=num_frames)
        self.scene_flow = SceneFlowField(cfg.scene_flow, num_frames=num_frames)
        self.half_window = cfg.scene_flow.window // 2

        self.camera_optimizer: CameraOptimizer = cfg.camera_optimizer.resolve(self.scene_info.approximate_poses).setup(
            num_cameras=num_frames, device="cpu"
        )
        if is_refining(self.camera_optimizer):
            CONSOLE.print(
                f"[bold]Semantic Flow:[/bold] refining the camera poses of the {num_frames} video frames "
                f"(camera optimizer mode {self.camera_optimizer.config.mode})"
            )
        self.video_cameras = VideoCameras(video.cameras, pose_correction=self.camera_optimizer)
        head_in = cfg.dynamic_field.feature_dim
        self.aggregator: Optional[FlowFeatureAggregator] = None
        self.attention: Optional[FlowAttention] = None
        if cfg.semantic_source == "flow":
            bank = FrameFeatureBank(cfg.encoder, load_frames(video))
            self.aggregator = FlowFeatureAggregator(self.video_cameras, bank)
            self.attention = FlowAttention(cfg.attention, cfg.encoder.feature_dim, cfg.scene_flow.window)
            head_in += self.attention.get_out_dim()
        self.semantic_head = SemanticHead(head_in, num_logits, cfg.semantic_hidden_dim)
        self.static_semantic_head = SemanticHead(cfg.static_field.feature_dim, num_logits, cfg.semantic_hidden_dim)
        self.renderer_depth = DepthRenderer(method="expected")
        self.render_times = RenderTimes(cfg.default_render_time)
        self.semantic_flow_panel = build_panel(self)
        cfg.adaptation.check()
        if cfg.adaptation.load_config is not None and cfg.adaptation.freeze:
            frozen = freeze_parts(self, cfg.adaptation)
            CONSOLE.print(f"[bold]Semantic Flow:[/bold] {', '.join(cfg.adaptation.freeze)} frozen ({frozen} values)")

    # ------------------------------------------------------------------------------------------
    # parameters and callbacks

    def get_param_groups(self) -> dict[str, list[Parameter]]:
        semantic = [self.semantic_head, self.static_semantic_head, self.aggregator, self.attention]
        groups = {
            "proposal_networks": list(self.proposal_field.parameters()),
            "static_field": list(self.static_field.parameters()),
            "dynamic_field": list(self.dynamic_field.parameters()),
            "scene_flow": list(self.scene_flow.parameters()),
            "semantics": [p for module in semantic if module is not None for p in module.parameters()],
        }
        self.camera_optimizer.get_param_groups(param_groups=groups)  # adds "camera_opt" when refining
        return groups

    def get_training_callbacks(
        self, training_callback_attributes: TrainingCallbackAttributes
    ) -> list[TrainingCallback]:
        def anneal(step: int) -> None:
            fraction = np.clip(step / max(self.config.proposal_warmup, 1), 0.0, 1.0)
            self.proposal_sampler.set_anneal(float((10.0 * fraction) / (1.0 + 9.0 * fraction)))

        callbacks = []
        if self.config.adaptation.load_config is not None:  # the first step of a new run, never on resuming
            callbacks.append(
                TrainingCallback([TrainingCallbackLocation.BEFORE_TRAIN_ITERATION], self._adapt, iters=(0,))
            )
        return callbacks + [
            TrainingCallback([TrainingCallbackLocation.BEFORE_TRAIN_ITERATION], anneal, update_every_num_iters=1),
            TrainingCallback(
                [TrainingCallbackLocation.AFTER_TRAIN_ITERATION],
                self.proposal_sampler.step_cb,
                update_every_num_iters=1,
            ),
        ]

    def _adapt(self, step: int) -> None:
        """Loads the parts named by the adaptation options from the source run (see :mod:`adaptation`)."""
        loaded = load_parts(self, self.config.adaptation, self.class_names)
        if self.aggregator is not None:
            self.aggregator.bank.invalidate()
        source = self.config.adaptation.load_config
        CONSOLE.print(f"[bold]Semantic Flow:[/bold] adapting from {source}: loaded {'; '.join(loaded)}")

    # ------------------------------------------------------------------------------------------
    # the dynamic query

    def _trajectory(
        self, unit: Float[Tensor, "*bs 3"], times: Float[Tensor, "*bs 1"], frames: Int[Tensor, "*bs"], flow: SceneFlow
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

    def _semantic_input(
        self, unit: Float[Tensor, "*bs 3"], trajectory: Float[Tensor, "*bs num_frames 3"], frames: Int[Tensor, "*bs"]
    ) -> Float[Tensor, "*bs out_dim"]:
        """Flow feature aggregation + flow attention over the trajectory tokens."""
        assert self.aggregator is not None and self.attention is not None
        if self.config.detach_trajectory_features:
            trajectory = trajectory.detach()
        offsets = torch.arange(-self.half_window, self.half_window + 1, device=unit.device)
        token_frames, exists = self.timeline.neighbour(frames[..., None], offsets)
        feats, valid = self.aggregator(self.normalizer.to_world(trajectory), token_frames, exists)
        displacement = torch.cat(
            [trajectory - unit[..., None, :], offsets.to(unit.dtype).expand(*token_frames.shape)[..., None]], dim=-1
        )
        return self.attention(feats, valid, displacement)

    def dynamic_query(self, unit: Float[Tensor, "*bs 3"], times: Float[Tensor, "*bs 1"]) -> DynamicQuery:
        """Dynamic field, scene flow and trajectory at normalised positions and times."""
        frames = self.timeline.nearest_frame(times)
        flow = self.scene_flow(unit, times)
        radiance = self.dynamic_field(self.normalizer.grid_coords(unit), times)
        return DynamicQuery(unit, radiance, flow, self._trajectory(unit, times, frames, flow), frames)

    def dynamic_logits(
        self, query: DynamicQuery, weights: Float[Tensor, "num_rays num_samples 1"]
    ) -> tuple[Float[Tensor, "num_rays num_kept num_logits"], Optional[Int[Tensor, "num_rays num_kept"]]]:
        """Semantic (and instance) logits of the dynamic part, at the samples that matter for rendering.

        Args:
            query: the dynamic query at every sample.
            weights: in training, the dynamic weights that select the ``semantic_samples`` samples per
                ray; otherwise the dynamic opacities α_d: samples with α_d below ``MIN_OPACITY`` cannot contribute
                to any render (every dynamic weight has a factor α_d) and get zero logits.

        Returns:
            The logits and, in training, the indices of the samples they belong to (None: every sample).
        """
        keep = self.config.semantic_samples
        if self.training and 0 < keep < weights.shape[1]:
            index = weights[..., 0].detach().topk(keep, dim=-1).indices
            return self._dynamic_head(query, partial(gather_samples, index=index)), index
        if self.training:
            return self._dynamic_head(query, lambda values: values), None
        visible = weights[..., 0] > MIN_OPACITY
        logits = weights.new_zeros(*visible.shape, self.num_classes + self.num_instance_ids)
        if visible.any():
            logits[visible] = self._dynamic_head(query, lambda values: values[visible])
        return logits, None

    def _dynamic_head(self, query: DynamicQuery, pick: Callable[[Tensor], Tensor]) -> Tensor:
        """Semantic head on the samples chosen by ``pick`` (a selection along the sample dimensions)."""
        head_in = pick(query.radiance.features)
        if self.config.semantic_source == "flow":
            trajectory = pick(query.trajectory.flatten(-2)).unflatten(-1, query.trajectory.shape[-2:])
            frames = pick(query.frames[..., None])[..., 0]
            head_in = torch.cat([self._semantic_input(pick(query.unit), trajectory, frames), head_in], dim=-1)
        return self.semantic_head(head_in)

    # ------------------------------------------------------------------------------------------
    # rendering

    def _render_logits(
        self, weights: Float[Tensor, "num_rays num_samples 1"], logits: Tensor, index: Optional[Tensor] = None
    ) -> Float[Tensor, "num_rays num_logits"]:
        """Volume-renders raw logits; ``index`` selects the samples ``logits`` belong to (all if None)."""
        if self.config.detach_semantic_weights:
            weights = weights.detach()
        return composite(weights if index is None else gather_samples(weights, index), logits)

    def _split_logits(self, logits: Tensor) -> tuple[Tensor, Optional[Tensor]]:
        """(class logits, instance logits or None) of a logits tensor from the semantic heads."""
        instances = logits[..., self.num_classes :] if self.num_instance_ids else None
        return logits[..., : self.num_classes], instances

    @staticmethod
    def _weights(ray_samples: RaySamples, static: Tensor, dynamic: Tensor, blend: Tensor) -> RenderWeights:
        return RenderWeights(
            blended=blended_weights(ray_samples.deltas, static, dynamic, blend),
            static=ray_samples.get_weights(static),
            dynamic=ray_samples.get_weights(dynamic),
        )

    def _refine_rays(self, ray_bundle: RayBundle) -> None:
        """Moves the rays of video frames to their frames' refined poses (in place, like nerfstudio).

        Training rays are identified by their camera index (the training split is the whole video, in
        order). Other rays (the evaluation batches, point-cloud export) are refined only where they carry
        a ``video_frame`` index >= 0; rays of the viewer, camera paths and held-out views are left alone.
        """
        if not is_refining(self.camera_optimizer):
            return
        if self.training:
            self.camera_optimizer.apply_to_raybundle(ray_bundle)
            return
        frames = video_frames_of(ray_bundle.metadata)
        if frames is None or not bool((frames >= 0).any()):
            return
        known = frames >= 0
        origins, directions = corrected_rays(
            ray_bundle.origins[known], ray_bundle.directions[known], self.camera_optimizer(frames[known])
        )
        ray_bundle.origins = ray_bundle.origins.index_put((known,), origins)
        ray_bundle.directions = ray_bundle.directions.index_put((known,), directions)

    def get_outputs(self, ray_bundle: RayBundle) -> dict[str, Tensor]:
        if ray_bundle.times is None:
            ray_bundle.times = torch.zeros_like(ray_bundle.origins[..., :1])
        self._refine_rays(ray_bundle)
        ray_bundle = self.collider(ray_bundle)
        density_fns = [partial(self.proposal_field, times=ray_bundle.times[:, None, :])]
        ray_samples, weights_list, ray_samples_list = self.proposal_sampler(ray_bundle, density_fns=density_fns)
        positions = ray_samples.frustums.get_positions()
        unit = self.normalizer.to_unit(positions)
        times = ray_bundle.times[:, None, :].expand(*positions.shape[:-1], 1)

        static = self.static_field(self.normalizer.grid_coords(unit), directions=ray_samples.frustums.directions)
        query = self.dynamic_query(unit, times)
        dynamic = query.radiance
        assert dynamic.blend is not None
        static_logits = self.static_semantic_head(static.features)
        if self.training:
            weights = self._weights(ray_samples, static.density, dynamic.density, dynamic.blend)
            logits, index = self.dynamic_logits(query, weights.blended.dynamic + weights.dynamic)
        else:
            opacity = 1.0 - torch.exp(-dynamic.density * ray_samples.deltas)
            logits, index = self.dynamic_logits(query, opacity)
            static_density, dynamic_density, blend = static.density, dynamic.density, dynamic.blend
            if self.edit.removes:  # zero the density of removed samples before compositing (paper §5.5)
                static_density = static_density * removal_keep(self.edit, *self._split_logits(static_logits))
                # only visible dynamic samples have logits; the others' zeros must not count as class 0
                keep_dynamic = removal_keep(self.edit, *self._split_logits(logits), predicted=opacity > MIN_OPACITY)
                # a removed dynamic sample also gives up its blending share, or it would still hide the static scene
                dynamic_density, blend = dynamic_density * keep_dynamic, blend * keep_dynamic
            weights = self._weights(ray_samples, static_density, dynamic_density, blend)
        blended = weights.blended

        accumulation = blended.total.sum(dim=-2).clamp(max=1.0)
        background = self._background()
        rgb = composite(blended.dynamic, dynamic.rgb) + composite(blended.static, static.rgb)
        full_logits = self._render_logits(blended.dynamic, logits, index) + self._render_logits(
            blended.static, static_logits
        )
        semantics, instances = self._split_logits(full_logits)
        min_accumulation = self.config.flow_min_accumulation  # the optical_flow output, as the flow loss sees it
        outputs = {
            "rgb": (rgb + background * (1.0 - accumulation)).clamp(0.0, 1.0),
            "depth": self.renderer_depth(weights=blended.total, ray_samples=ray_samples),
            "accumulation": accumulation,
            "semantics": semantics,
            "semantics_colormap": self.class_colors[semantics.argmax(dim=-1)],
            "rgb_static": composite(weights.static, static.rgb),
            "rgb_dynamic": composite(weights.dynamic, dynamic.rgb),
            "dynamic_mask": composite(blended.total, dynamic.blend).clamp(0.0, 1.0),
            "expected_points": expected_point(blended.total, positions, min_accumulation)[0],
            "expected_points_next": expected_point(
                blended.total, self.normalizer.to_world(unit + query.flow.forward), min_accumulation
            )[0],
        }
        if instances is not None:
            outputs["instances"] = self.instance_colors[instances.argmax(dim=-1)]
        if not self.training:
            outputs["rgb"] = highlight(self.edit, outputs["rgb"], semantics)
            return outputs
        outputs["label_logits"] = full_logits
        outputs["label_logits_static"] = self._render_logits(weights.static, static_logits)
        outputs["label_logits_dynamic"] = self._render_logits(weights.dynamic, logits, index)
        outputs["weights_list"] = weights_list + [blended.total]  # type: ignore[assignment]
        outputs["ray_samples_list"] = ray_samples_list + [ray_samples]  # type: ignore[assignment]
        outputs.update(self._warped_outputs(ray_samples, times, query, weights.dynamic))
        return outputs

    def _warped_outputs(
        self, ray_samples: RaySamples, times: Tensor, query: DynamicQuery, weights_dynamic: Tensor
    ) -> dict[str, Tensor]:
        """Training-only renders from the samples warped to the neighbouring frames, and flow terms.

        The optical-flow terms use every ray (they need no extra field evaluation); the renders from
        warped samples, which query the dynamic part again at t-1 and t+1, use a random subset of
        ``warped_ray_fraction`` of the rays (``warp_rays``).
        """
        num_rays = ray_samples.shape[0]
        rays = torch.randperm(num_rays, device=times.device)[
            : max(1, round(num_rays * self.config.warped_ray_fraction))
        ]
        out: dict[str, Tensor] = {"warp_rays": rays}
        ray_frames = query.frames[:, 0]
        subset = ray_samples[rays]
        cycle, flows = [], [query.flow]
        for direction, name in ((1, "next"), (-1, "prev")):
            interval = self.timeline.interval(query.frames, direction)
            warped_unit = query.trajectory[..., self.half_window + direction, :]
            neighbour, exists = self.timeline.neighbour(ray_frames, direction)
            out[f"exists_{name}"] = exists[:, None].float()
            out[f"neighbour_{name}"] = neighbour
            out[f"points_{name}"], out[f"flow_valid_{name}"] = expected_point(
                weights_dynamic, self.normalizer.to_world(warped_unit), self.config.flow_min_accumulation
            )
            warped = self.dynamic_query(warped_unit[rays], (times + direction * interval)[rays])
            weights = subset.get_weights(warped.radiance.density)
            logits, index = self.dynamic_logits(warped, weights)
            out[f"rgb_dynamic_{name}"] = composite(weights, warped.radiance.rgb)
            out[f"label_logits_dynamic_{name}"] = self._render_logits(weights, logits, index)
            there = query.flow.toward(direction)[rays]
            cycle.append(losses.cycle_consistency_loss(there, warped.flow.toward(-direction)))
            flows.append(warped.flow)
        out["loss_cycle"] = sum(cycle) / len(cycle)
        out["loss_slow"] = sum(losses.slow_flow_loss(f.forward, f.backward) for f in flows) / len(flows)
        out["loss_temporal"] = sum(losses.temporal_smoothness_loss(f.forward, f.backward) for f in flows) / len(flows)
        out["loss_spatial"] = losses.spatial_smoothness_loss(torch.cat([query.flow.forward, query.flow.backward], -1))
        assert query.radiance.blend is not None
        out["loss_sparsity"] = losses.entropy_loss(weights_dynamic) + losses.entropy_loss(query.radiance.blend)
        motion = query.flow.forward.abs().sum(-1, keepdim=True) + query.flow.backward.abs().sum(-1, keepdim=True)
        out["scene_flow_magnitude"] = composite(weights_dynamic, motion)
        return out

    # ------------------------------------------------------------------------------------------
    # losses and metrics

    def _background(self) -> float:
        """Colour value rendered behind the last sample (0 black, 1 white)."""
        return 1.0 if self.config.background_color == "white" else 0.0

    def _target_rgb(self, image: Tensor) -> Tensor:
        """The ground-truth colour of a batch image, as the losses and metrics compare it (RGBA composited)."""
        return losses.rgb_target(image.to(self.device), self._background())

    def get_metrics_dict(self, outputs, batch) -> dict[str, Tensor]:
        image = self._target_rgb(batch["image"])
        metrics = {"psnr": peak_signal_noise_ratio(outputs["rgb"], image, data_range=1.0)}
        if self.training:
            metrics["distortion"] = distortion_loss(outputs["weights_list"], outputs["ray_samples_list"])
            metrics["interlevel"] = interlevel_loss(outputs["weights_list"], outputs["ray_samples_list"])
            self.camera_optimizer.get_metrics_dict(metrics)  # size of the pose corrections, when refining
        return metrics

    def get_loss_dict(self, outputs, batch, metrics_dict=None) -> dict[str, Tensor]:
        cfg = self.config
        image = self._target_rgb(batch["image"])
        labels = batch["semantics"].to(self.device)
        loss = {"rgb": cfg.rgb_loss_mult * losses.masked_mse(outputs["rgb"], image)}
        if not self.training:
            loss["semantic"] = cfg.semantic_loss_mult * losses.semantic_cross_entropy(outputs["semantics"], labels)
            return loss
        motion = batch["motion"].to(self.device)
        known = (motion >= 0).float()  # -1 = unknown motion (no labels and no motion mask)
        static_rays = (motion == 0).float()
        loss["rgb_dynamic"] = cfg.rgb_dynamic_loss_mult * losses.masked_mse(outputs["rgb_dynamic"], image)
        loss["rgb_static"] = cfg.rgb_static_loss_mult * losses.masked_mse(outputs["rgb_static"], image, static_rays)
        loss.update(self._label_losses(outputs, batch, static_rays))
        assert metrics_dict is not None
        loss["interlevel"] = cfg.interlevel_loss_mult * metrics_dict["interlevel"]
        loss["distortion"] = cfg.distortion_loss_mult * metrics_dict["distortion"]
        pixels = batch["indices"][:, [2, 1]].to(self.device).float() + 0.5
        rays = outputs["warp_rays"]
        for name, flow_key in (("next", "flow_fwd"), ("prev", "flow_bwd")):
            exists = outputs[f"exists_{name}"]
            induced = induced_flow(self.video_cameras, outputs[f"points_{name}"], outputs[f"neighbour_{name}"], pixels)
            loss[f"rgb_warped_{name}"] = cfg.rgb_warped_loss_mult * losses.masked_mse(
                outputs[f"rgb_dynamic_{name}"], image[rays], exists[rays]
            )
            warped_classes, _ = self._split_logits(outputs[f"label_logits_dynamic_{name}"])
            loss[f"semantic_consistency_{name}"] = cfg.semantic_consistency_loss_mult * losses.semantic_cross_entropy(
                warped_classes, labels[rays], exists[rays]
            )
            valid = batch[f"{flow_key}_valid"].to(self.device) * exists * outputs[f"flow_valid_{name}"]
            loss[f"optical_flow_{name}"] = cfg.optical_flow_loss_mult * losses.optical_flow_loss(
                induced, batch[flow_key].to(self.device), valid
            )
        loss["cycle"] = cfg.cycle_loss_mult * outputs["loss_cycle"]
        loss["slow_flow"] = cfg.slow_flow_loss_mult * outputs["loss_slow"]
        loss["temporal_smooth"] = cfg.temporal_smooth_loss_mult * outputs["loss_temporal"]
        loss["spatial_smooth"] = cfg.spatial_smooth_loss_mult * outputs["loss_spatial"]
        loss["static_flow"] = cfg.static_flow_loss_mult * losses.masked_mean(
            outputs["scene_flow_magnitude"], static_rays
        )
        loss["blend"] = cfg.blend_loss_mult * losses.masked_mean(torch.abs(outputs["dynamic_mask"] - motion), known)
        loss["sparsity"] = cfg.sparsity_loss_mult * outputs["loss_sparsity"]
        self.camera_optimizer.get_loss_dict(loss)  # L2 penalty on the pose corrections, when refining
        return loss

    def _label_losses(
        self, outputs: dict[str, Tensor], batch: dict[str, Any], static_rays: Tensor
    ) -> dict[str, Tensor]:
        """Cross entropy of the full, dynamic and static (static pixels only) renders of class and instance logits."""
        cfg = self.config
        labels = batch["semantics"].to(self.device)
        instance_labels = batch["instances"].to(self.device) if self.num_instance_ids else None
        out = {}
        for suffix, mult, mask in (
            ("", cfg.semantic_loss_mult, None),
            ("_dynamic", cfg.semantic_dynamic_loss_mult, None),
            ("_static", cfg.semantic_static_loss_mult, static_rays),
        ):
            classes, instances = self._split_logits(outputs[f"label_logits{suffix}"])
            out[f"semantic{suffix}"] = mult * losses.semantic_cross_entropy(classes, labels, mask)
            if instances is not None and instance_labels is not None and suffix != "_static":
                out[f"instance{suffix}"] = cfg.instance_loss_mult * losses.semantic_cross_entropy(
                    instances, instance_labels
                )
        return out

    @torch.no_grad()
    def get_outputs_for_camera(self, camera: Cameras, obb_box=None) -> dict[str, Tensor]:
        camera = self.render_times.resolve(camera)  # fills missing times, clamps to [0, 1]; says so once
        # a video frame's camera (evaluation images, `ns-render dataset`) renders from its refined pose
        camera = refine_camera(camera, self.video_cameras.refined_camera_to_worlds())
        outputs = super().get_outputs_for_camera(camera, obb_box=obb_box)
        outputs["optical_flow"] = self._flow_image(
            camera, outputs.pop("expected_points"), outputs.pop("expected_points_next")
        )
        if outputs["semantics"].shape[-1] == 2:  # the viewer and ns-render cannot show 2-channel images
            logits = outputs["semantics"]
            outputs["semantics"] = torch.cat([logits, logits.min(dim=-1, keepdim=True).values], dim=-1)
        return outputs

    def _flow_image(self, camera: Cameras, points: Tensor, points_next: Tensor) -> Tensor:
        """Colour image of the 2D motion seen by ``camera`` between t and one frame later."""
        view = VideoCameras(camera.to(points.device).flatten())
        frames = torch.zeros(points.shape[:-1], dtype=torch.long, device=points.device)
        flow = view.project(points_next, frames)[0] - view.project(points, frames)[0]
        return flow_to_rgb(flow)

    def get_image_metrics_and_images(
        self, outputs: dict[str, Tensor], batch: dict[str, Any]
    ) -> tuple[dict[str, float], dict[str, Tensor]]:
        rgb = outputs["rgb"]
        image = self._target_rgb(batch["image"]).to(rgb.device)
        pred_nchw, gt_nchw = rgb.permute(2, 0, 1)[None], image.permute(2, 0, 1)[None]
        metrics = {
            "psnr": float(peak_signal_noise_ratio(pred_nchw, gt_nchw, data_range=1.0)),
            "ssim": float(structural_similarity_index_measure(pred_nchw, gt_nchw, data_range=1.0)),
        }
        images = {"img": torch.cat([image, rgb], dim=1)}
        if "semantics" in batch:
            labels = batch["semantics"].to(rgb.device)[..., 0]
            pred = outputs["semantics"].argmax(dim=-1)
            metrics.update(self._segmentation_metrics(pred, labels, outputs, batch))
            gt_colors = self.class_colors[labels.clamp(min=0)] * (labels >= 0)[..., None]
            images["semantics"] = torch.cat([gt_colors, outputs["semantics_colormap"]], dim=1)
        images["depth"] = colormaps.apply_depth_colormap(outputs["depth"], accumulation=outputs["accumulation"])
        return metrics, images

    def _segmentation_metrics(
        self, pred: Tensor, labels: Tensor, outputs: dict[str, Tensor], batch: dict[str, Any]
    ) -> dict[str, float]:
        """mIoU (all classes, and foreground only), accuracies, and the DAVIS scores J, F, J&F of the objects.

        Objects are the instances when the scene has instance labels, else the moving classes (one object
        for a binary foreground/background scene).
        """
        fg = self.scene_info.dynamic_class_ids
        objects: dict[str, Any] = {"object_ids": fg}
        if self.num_instance_ids and "instances" in batch and "instances" in outputs:
            matches = (outputs["instances"][..., None, :] == self.instance_colors[: self.num_instance_ids]).all(-1)
            objects = {
                "object_ids": [i.id for i in self.scene_info.instances],
                "pred_objects": matches.float().argmax(dim=-1),  # the colour output back to instance ids
                "target_objects": batch["instances"].to(pred.device)[..., 0],
            }
        metrics = segmentation.image_metrics(pred, labels, len(self.class_names), fg, **objects)
        if self.config.eval_foreground_only:  # the headline scores follow the foreground protocol
            metrics.update(semantic_metrics(pred, labels, len(self.class_names), merge_into_background=fg))
        return metrics

    def get_rgba_image(self, outputs: dict[str, Tensor], output_name: str = "rgb") -> Tensor:
        """``outputs[output_name]`` (any colour output) with the accumulation as alpha.

        Used by `ns-render --rendered-output-names rgba` and `ns-export pointcloud` (which keeps points
        with alpha > 0.5); nerfstudio's version needs a ``renderer_rgb`` this model does not have.
        """
        return torch.cat([outputs[output_name], outputs["accumulation"]], dim=-1)


def load_frames(video: VideoFrames) -> Tensor:
    """The video's images as one uint8 tensor [num_frames, H, W, 3] (for the frame encoder)."""
    frames = []
    for path in video.image_filenames:
        with Image.open(path) as image:
            frames.append(np.asarray(image.convert("RGB")))
    sizes = {f.shape for f in frames}
    if len(sizes) != 1:
        raise ValueError(f"the video frames must all have the same size, got {sorted(sizes)}")
    return torch.from_numpy(np.stack(frames))


def gather_samples(
    values: Shaped[Tensor, "num_rays num_samples channels"], index: Int[Tensor, "num_rays num_kept"]
) -> Shaped[Tensor, "num_rays num_kept channels"]:
    """The samples ``index`` of every ray."""
    return torch.gather(values, 1, index[..., None].expand(-1, -1, values.shape[-1]))
