"""Semantic Flow model (Tian et al., ICLR 2024) on grid encodings, for nerfstudio.

Shape vocabulary: ``num_rays``, ``num_samples`` along a ray, ``num_frames`` = K tokens of a
trajectory window, ``feat_dim``, ``num_classes``; ``*bs`` for leading batch dims.

Per ray batch (:meth:`SemanticFlowModel.get_outputs`):
1. samples from nerfstudio's proposal sampler (time-aware proposal densities);
2. the static field at every sample; the dynamic branch (:class:`~semflow_ns.fields.dynamic_branch.DynamicBranch`)
   at every sample: dynamic field, scene flow and trajectory over K frames;
3. in training, the dynamic branch again at the samples of some rays warped to t-1 and t+1;
4. the semantic branch (frame features along the trajectories, flow attention, semantic head) on the chosen
   samples of all these queries in one pass;
5. DynNeRF blending of static and dynamic parts for colour, semantic logits and depth; in training also the
   renders from warped samples for the warped colour, semantic-consistency, cycle-consistency and optical-flow
   losses: ``outputs["warped"]`` and ``outputs["flow_regularisers"]`` (typed values, see
   :mod:`semflow_ns.model_components.warping`), which :meth:`SemanticFlowModel.get_loss_dict` reduces and
   weights.

The loss assembly is in :mod:`~semflow_ns.model_components.loss_terms`, the whole-image outputs in
:mod:`~semflow_ns.model_components.image_outputs`. The viewer panel is imported when a model is built.
"""

import dataclasses
from functools import partial
from typing import Any, Optional

import numpy as np
import torch
from jaxtyping import Float
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.cameras.rays import RayBundle
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
from nerfstudio.models.base_model import Model
from nerfstudio.utils.rich_utils import CONSOLE
from torch import Tensor, nn
from torch.nn import Parameter
from torchmetrics.functional.image import peak_signal_noise_ratio

from semflow_ns.data.dataparsers.metadata import SceneInfo, VideoFrames
from semflow_ns.field_components.flow_aggregation import VideoCameras
from semflow_ns.field_components.frame_encoder import load_frames
from semflow_ns.field_components.semantic_head import SemanticHead
from semflow_ns.field_components.timeline import VideoTimeline
from semflow_ns.fields.density_field import ProposalDensityField
from semflow_ns.fields.dynamic_branch import DynamicBranch, upgrade_state_keys
from semflow_ns.fields.encoding import SceneNormalizer, ViewGrid
from semflow_ns.fields.radiance_field import RadianceField
from semflow_ns.model_components import losses
from semflow_ns.model_components.adaptation import freeze_parts, load_parts, source_uses_field_features
from semflow_ns.model_components.dynamic_query import MIN_OPACITY
from semflow_ns.model_components.editing import SceneEdit, highlight, removed_densities
from semflow_ns.model_components.image_outputs import displayable_semantics, flow_image, image_metrics_and_images
from semflow_ns.model_components.loss_terms import (
    FLOW_LABEL_KEYS,
    class_balance_weights,
    label_losses,
    regulariser_losses,
    static_flow_losses,
    warped_losses,
)
from semflow_ns.model_components.pose_refinement import (
    refine_camera,
    refine_ray_bundle,
    setup_pose_refinement,
)
from semflow_ns.model_components.render_times import RenderTimes
from semflow_ns.model_components.rendering import composite, expected_point, render_logits, render_weights
from semflow_ns.model_components.warping import FlowRegularisers
from semflow_ns.models.model_config import (
    SemanticFlowModelConfig,
    over_label_limit,
    resolve_field_resolutions,
    resolve_label_defaults,
)
from semflow_ns.utils.colors import instance_palette


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
        propagation = self.config.semantic_propagation_loss_mult
        self.config = resolve_label_defaults(self._follow_adaptation_source(self.config), video.labelled)
        if propagation and over_label_limit(self.config, video.labelled):
            CONSOLE.print(
                f"[bold]Semantic Flow:[/bold] label propagation off: labels on {sum(video.labelled)} of "
                f"{len(video.labelled)} frames, more than --pipeline.model.semantic-propagation-max-labelled-fraction "
                f"{self.config.semantic_propagation_max_labelled_fraction:g}"
            )
        self.scene_info: SceneInfo = metadata["semflow_scene"]
        semantics: Semantics = metadata["semantics"]
        self.class_names = list(semantics.classes)
        self.register_buffer("class_colors", semantics.colors.float().clone(), persistent=False)
        num_frames = len(video)
        self.num_classes = len(self.class_names)
        own_ids = max((i.id for i in self.scene_info.instances), default=-1) + 1
        # a multi-scene run gives every scene as many instance logits as the scene with the most (shared heads)
        self.num_instance_ids: int = max(own_ids, self.kwargs.get("num_instance_ids", 0))
        self.register_buffer("instance_colors", instance_palette(max(self.num_instance_ids, 1)), persistent=False)
        self.edit = SceneEdit()
        num_logits = self.num_classes + self.num_instance_ids
        cfg = self.config

        near, far = self.scene_info.near_far((cfg.near_plane, cfg.far_plane))
        unbounded = cfg.scene_contraction or self.scene_info.unbounded
        if unbounded:  # contracted space reaches infinity: sample far beyond the scene's far bound
            far = max(far, cfg.unbounded_far_plane)
        self.collider = NearFarCollider(near_plane=near, far_plane=far, reset_near_plane=not cfg.render_from_near_plane)
        view_grid = cfg.grid_space == "view" or (
            cfg.grid_space == "auto" and unbounded and cameras_share_a_centre(video.cameras, near)
        )
        self.normalizer = SceneNormalizer(
            self.scene_box, contract=unbounded, view=view_grid_of(video.cameras, near) if view_grid else None
        )
        frame_size = int(torch.maximum(video.cameras.width, video.cameras.height).max())
        self.config = cfg = resolve_field_resolutions(cfg, frame_size, view_grid)
        self.timeline = VideoTimeline(video.times)
        self.register_buffer("label_distance", video.label_distance(), persistent=False)
        # class counts of the labelled rays trained on (for semantic_class_balance; not saved: they only weigh losses)
        self.register_buffer("label_counts", torch.zeros(self.num_classes), persistent=False)
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
        approximate = self.scene_info.approximate_poses
        self.camera_optimizer = setup_pose_refinement(cfg.camera_optimizer, approximate, video.times, video.withheld)
        self.video_cameras = VideoCameras(video.cameras, pose_correction=self.camera_optimizer)
        frames = load_frames(video.image_filenames) if cfg.semantic_source == "flow" else None
        self.dynamic = DynamicBranch(
            cfg, self.normalizer, self.timeline, self.video_cameras, frames, num_logits, video.labelled
        )
        self.register_load_state_dict_pre_hook(_upgrade_checkpoint_keys)
        self.static_semantic_head = SemanticHead(
            cfg.static_field.feature_dim, num_logits, cfg.semantic_hidden_dim, cfg.static_logit_bound
        )
        self.renderer_depth = DepthRenderer(method="expected")
        self.render_times = RenderTimes(cfg.default_render_time)
        from semflow_ns.viewer.panel import build_panel  # nerfstudio's viewer elements: only for a built model
        from semflow_ns.viewer.pointer import PointerTools

        self.semantic_flow_panel = build_panel(self)  # also applies the configured scene edit
        self.semantic_flow_pointer = PointerTools(self, self.semantic_flow_panel)  # clicks: inspect, paths, picks
        cfg.adaptation.check()
        if cfg.adaptation.load_config is not None and cfg.adaptation.freeze:
            frozen = freeze_parts(self, cfg.adaptation)
            CONSOLE.print(f"[bold]Semantic Flow:[/bold] {', '.join(cfg.adaptation.freeze)} frozen ({frozen} values)")

    @staticmethod
    def _follow_adaptation_source(config: SemanticFlowModelConfig) -> SemanticFlowModelConfig:
        """A run adapted from another takes the source's semantic head (field features or not) when its own is
        left to the data: the heads must have the same inputs to be loaded."""
        if config.semantic_field_features is not None or config.semantic_source != "flow":
            return config
        flow_dim = config.scene_flow.window * config.attention.d_model
        uses = source_uses_field_features(config.adaptation, config.dynamic_field.feature_dim, flow_dim)
        return config if uses is None else dataclasses.replace(config, semantic_field_features=uses)

    # ------------------------------------------------------------------------------------------
    # parameters and callbacks

    def get_param_groups(self) -> dict[str, list[Parameter]]:
        branch = self.dynamic
        semantic = [branch.semantic_head, self.static_semantic_head, branch.aggregator, branch.attention]
        groups = {
            "proposal_networks": list(self.proposal_field.parameters()),
            "static_field": list(self.static_field.parameters()),
            "dynamic_field": list(branch.field.parameters()),
            "scene_flow": list(branch.scene_flow.parameters()),
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
        if self.dynamic.aggregator is not None:  # the age of the frame features kept between steps
            bank = self.dynamic.aggregator.bank
            callbacks.append(
                TrainingCallback(
                    [TrainingCallbackLocation.BEFORE_TRAIN_ITERATION], bank.set_step, update_every_num_iters=1
                )
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
        if self.dynamic.aggregator is not None:
            self.dynamic.aggregator.bank.invalidate()
        source = self.config.adaptation.load_config
        CONSOLE.print(f"[bold]Semantic Flow:[/bold] adapting from {source}: loaded {'; '.join(loaded)}")

    # ------------------------------------------------------------------------------------------
    # rendering

    def render_logits(
        self, weights: Float[Tensor, "num_rays num_samples 1"], logits: Float[Tensor, "num_rays num_samples num_logits"]
    ) -> Float[Tensor, "num_rays num_logits"]:
        """Volume-renders raw logits (paper eq. 7), through detached weights if ``detach_semantic_weights``."""
        return render_logits(weights, logits, self.config.detach_semantic_weights)

    def split_logits(self, logits: Tensor) -> tuple[Tensor, Optional[Tensor]]:
        """(class logits, instance logits or None) of a logits tensor from the semantic heads."""
        instances = logits[..., self.num_classes :] if self.num_instance_ids else None
        return logits[..., : self.num_classes], instances

    def samples_per_ray(self) -> int:
        """The fields' samples per ray: `num_samples` in training, `render_samples` (if set) otherwise."""
        cfg = self.config
        return cfg.num_samples if self.training or cfg.render_samples is None else cfg.render_samples

    def get_outputs(self, ray_bundle: RayBundle) -> dict[str, Any]:
        if ray_bundle.times is None:
            ray_bundle.times = torch.zeros_like(ray_bundle.origins[..., :1])
        refine_ray_bundle(self.camera_optimizer, ray_bundle, self.training)
        ray_bundle = self.collider(ray_bundle)
        density_fns = [partial(self.proposal_field, times=ray_bundle.times[:, None, :])]
        self.proposal_sampler.num_nerf_samples_per_ray = self.samples_per_ray()
        ray_samples, weights_list, ray_samples_list = self.proposal_sampler(ray_bundle, density_fns=density_fns)
        positions = ray_samples.frustums.get_positions()
        unit = self.normalizer.to_unit(positions)
        times = ray_bundle.times[:, None, :].expand(*positions.shape[:-1], 1)

        static = self.static_field(self.normalizer.grid_coords(unit), directions=ray_samples.frustums.directions)
        query = self.dynamic(unit, times)
        dynamic = query.radiance
        assert dynamic.blend is not None
        static_logits = self.static_semantic_head(static.features)
        blend = dynamic.blend  # what the render blends in (removed dynamic samples give up their share)
        if self.training:
            weights = render_weights(ray_samples, static.density, dynamic.density, dynamic.blend)
            warped = self.dynamic.warped_queries(ray_samples, times, query)
            logits, warped_logits = self.dynamic.logits(
                (query, weights.blended.dynamic + weights.dynamic),
                (warped.query, warped.weights),
                fresh=query.frames[:, 0],
            )
        else:
            densities = (static.density, dynamic.density, dynamic.blend)
            if self.edit.removes:  # zero the density of removed samples before compositing (paper Fig. 1)
                # every dynamic sample that could be seen once others are removed needs a prediction
                opacity = 1.0 - torch.exp(-dynamic.density * ray_samples.deltas)
                (logits,) = self.dynamic.logits((query, opacity))
                visible = opacity > MIN_OPACITY  # the dynamic samples that have logits
                densities = removed_densities(
                    self.edit, self.split_logits, static, dynamic, static_logits, logits, visible
                )
                weights = render_weights(ray_samples, *densities)
            else:  # only the samples that contribute to the render need a prediction
                weights = render_weights(ray_samples, *densities)
                (logits,) = self.dynamic.logits((query, weights.blended.dynamic))
            blend = densities[2]
        blended = weights.blended

        accumulation = blended.total.sum(dim=-2).clamp(max=1.0)
        background = self.background()
        rgb = composite(blended.dynamic, dynamic.rgb) + composite(blended.static, static.rgb)
        static_part = self.render_logits(blended.static, static_logits)  # the static field's share
        full_logits = self.render_logits(blended.dynamic, logits) + static_part
        semantics, instances = self.split_logits(full_logits)
        min_accumulation = self.config.flow_min_accumulation  # the optical_flow output, as the flow loss sees it
        outputs: dict[str, Any] = {
            "rgb": (rgb + background * (1.0 - accumulation)).clamp(0.0, 1.0),
            "depth": self.renderer_depth(weights=blended.total, ray_samples=ray_samples),
            "accumulation": accumulation,
            "semantics": semantics,
            "semantics_colormap": self.class_colors[semantics.argmax(dim=-1)],
            "rgb_static": composite(weights.static, static.rgb),
            "rgb_dynamic": composite(weights.dynamic, dynamic.rgb),
            "dynamic_mask": composite(blended.total, blend).clamp(0.0, 1.0),
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
        norm = (ray_bundle.metadata or {}).get("directions_norm")  # ray length per unit of z-depth
        outputs["z_depth"] = outputs["depth"] / norm if norm is not None else outputs["depth"]
        outputs["label_logits"] = full_logits
        if not self.config.static_semantics_from_moving:  # the static head held fixed on moving pixels
            outputs["label_logits_static_part"] = static_part
            outputs["label_logits_static_fixed_head"] = self.render_logits(blended.static, static_logits.detach())
        outputs["label_logits_static"] = self.render_logits(weights.static, static_logits)
        outputs["label_logits_dynamic"] = self.render_logits(weights.dynamic, logits)
        outputs["weights_list"] = weights_list + [blended.total]
        outputs["ray_samples_list"] = ray_samples_list + [ray_samples]
        outputs["warped"] = self.dynamic.warped_renders(warped, query, weights.dynamic, warped_logits)
        outputs["flow_regularisers"] = FlowRegularisers(query.flow, weights.dynamic, dynamic.blend)
        if self.dynamic.token_consistency is not None:
            outputs["token_consistency"] = self.dynamic.token_consistency
        if self.config.static_optical_flow_loss_mult > 0:  # the static surface, for its flow loss
            outputs["static_surface"], outputs["static_surface_valid"] = expected_point(
                weights.static, positions, min_accumulation
            )
        return outputs

    # ------------------------------------------------------------------------------------------
    # losses and metrics

    def background(self) -> float:
        """Colour value rendered behind the last sample (0 black, 1 white)."""
        return 1.0 if self.config.background_color == "white" else 0.0

    def target_rgb(self, image: Tensor) -> Tensor:
        """The ground-truth colour of a batch image, as the losses and metrics compare it (RGBA composited)."""
        return losses.rgb_target(image.to(self.device), self.background())

    def get_metrics_dict(self, outputs, batch) -> dict[str, Tensor]:
        image = self.target_rgb(batch["image"])
        metrics = {"psnr": peak_signal_noise_ratio(outputs["rgb"], image, data_range=1.0)}
        if self.training:
            metrics["distortion"] = distortion_loss(outputs["weights_list"], outputs["ray_samples_list"])
            metrics["interlevel"] = interlevel_loss(outputs["weights_list"], outputs["ray_samples_list"])
            self.camera_optimizer.get_metrics_dict(metrics)  # size of the pose corrections, when refining
        return metrics

    def get_loss_dict(self, outputs, batch, metrics_dict=None) -> dict[str, Tensor]:
        cfg = self.config
        image = self.target_rgb(batch["image"])
        labels = batch["semantics"].to(self.device)
        loss = {"rgb": cfg.rgb_loss_mult * losses.masked_mse(outputs["rgb"], image)}
        if not self.training:
            loss["semantic"] = cfg.semantic_loss_mult * losses.semantic_cross_entropy(outputs["semantics"], labels)
            return loss
        motion = batch["motion"].to(self.device)  # 1 moving, 0 static, -1 unknown (no labels, no motion mask)
        static_rays = (motion == 0).float()
        loss["rgb_dynamic"] = cfg.rgb_dynamic_loss_mult * losses.masked_mse(outputs["rgb_dynamic"], image)
        loss["rgb_static"] = cfg.rgb_static_loss_mult * losses.masked_mse(outputs["rgb_static"], image, static_rays)
        instance_labels = batch["instances"].to(self.device) if self.num_instance_ids else None
        carried = {k: batch[k].to(self.device) for k in FLOW_LABEL_KEYS if k in batch} or None
        moving_rays = (motion == 1).float()
        class_weights = None
        if cfg.semantic_class_balance > 0:
            labelled = labels[labels != losses.IGNORE_INDEX]
            self.label_counts += torch.bincount(labelled, minlength=self.num_classes).float()
            class_weights = class_balance_weights(self.label_counts, cfg.semantic_class_balance)
        loss.update(
            label_losses(
                cfg,
                self.split_logits,
                outputs,
                labels,
                instance_labels,
                static_rays,
                carried,
                moving_rays,
                class_weights,
            )
        )
        assert metrics_dict is not None
        loss["interlevel"] = cfg.interlevel_loss_mult * metrics_dict["interlevel"]
        loss["distortion"] = cfg.distortion_loss_mult * metrics_dict["distortion"]
        pixels = batch["indices"][:, [2, 1]].to(self.device).float() + 0.5
        warped = outputs["warped"]
        dynamic_logits = outputs["label_logits_dynamic"]
        loss.update(
            warped_losses(
                cfg,
                warped,
                self.split_logits,
                self.video_cameras,
                image,
                labels,
                dynamic_logits,
                pixels,
                batch,
                self.label_distance if cfg.semantic_propagation_outward else None,
            )
        )
        if "static_surface" in outputs:
            loss.update(
                static_flow_losses(
                    cfg,
                    warped,
                    self.video_cameras,
                    (outputs["static_surface"], outputs["static_surface_valid"]),
                    static_rays,
                    pixels,
                    batch,
                )
            )
        if "token_consistency" in outputs:
            loss["token_consistency"] = cfg.token_consistency_loss_mult * outputs["token_consistency"]
        if "depth" in batch:  # the scene measures depth (SfM points, depth maps)
            loss["depth"] = cfg.depth_loss_mult * losses.depth_loss(outputs["z_depth"], batch["depth"].to(self.device))
        regularisers = outputs["flow_regularisers"]
        loss.update(regulariser_losses(cfg, warped, regularisers, outputs["dynamic_mask"], motion))
        self.camera_optimizer.get_loss_dict(loss)  # L2 penalty on the pose corrections, when refining
        return loss

    @torch.no_grad()
    def get_outputs_for_camera(self, camera: Cameras, obb_box=None) -> dict[str, Tensor]:
        camera = self.render_times.resolve(camera)  # fills missing times, clamps to [0, 1]; says so once
        # a video frame's camera (evaluation images, `ns-render dataset`) renders from its refined pose
        camera = refine_camera(camera, self.video_cameras.refined_camera_to_worlds())
        outputs = super().get_outputs_for_camera(camera, obb_box=obb_box)
        outputs["optical_flow"] = flow_image(
            camera, outputs.pop("expected_points"), outputs.pop("expected_points_next")
        )
        outputs["semantics"] = displayable_semantics(outputs["semantics"])  # the viewer cannot show 2 channels
        return outputs

    def get_image_metrics_and_images(
        self, outputs: dict[str, Tensor], batch: dict[str, Any]
    ) -> tuple[dict[str, float], dict[str, Tensor]]:
        return image_metrics_and_images(self, outputs, batch)

    def get_rgba_image(self, outputs: dict[str, Tensor], output_name: str = "rgb") -> Tensor:
        """``outputs[output_name]`` (any colour output) with the accumulation as alpha.

        Used by `ns-render --rendered-output-names rgba` and `ns-export pointcloud` (which keeps points
        with alpha > 0.5); nerfstudio's version needs a ``renderer_rgb`` this model does not have.
        """
        return torch.cat([outputs[output_name], outputs["accumulation"]], dim=-1)


def _upgrade_checkpoint_keys(module: nn.Module, state_dict: dict[str, Tensor], prefix: str, *args: Any) -> None:
    """Load-state-dict pre-hook: checkpoints saved before the dynamic branch was one module load too."""
    upgraded = upgrade_state_keys(state_dict, prefix)
    state_dict.clear()
    state_dict.update(upgraded)


def view_grid_of(cameras: Cameras, near: float) -> ViewGrid:
    """The :class:`ViewGrid` of a video's cameras (their fields of view from the intrinsics)."""
    fx, fy, cx, cy = (getattr(cameras, k).float()[:, 0] for k in ("fx", "fy", "cx", "cy"))
    width, height = cameras.width.float()[:, 0], cameras.height.float()[:, 0]
    half_x = torch.maximum(cx, width - cx) / fx
    half_y = torch.maximum(cy, height - cy) / fy
    return ViewGrid(cameras.camera_to_worlds, torch.stack([half_x, half_y], dim=-1).atan(), near)


def cameras_share_a_centre(cameras: Cameras, near: float) -> bool:
    """Whether every camera sits at the same point (rotation-only poses), to a thousandth of ``near``."""
    origins = cameras.camera_to_worlds[:, :3, 3].float()
    return bool((origins - origins.mean(0)).norm(dim=-1).max() <= 1e-3 * near)
