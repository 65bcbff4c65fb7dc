"""One Semantic Flow model for several scenes (the paper's multi-scene task).

Every scene gets its own :class:`SemanticFlowModel` for what describes that scene (radiance, proposal and
scene-flow fields, camera corrections, its video's frames); the semantic parts are one set of modules shared
by all scenes: the frame encoder, flow attention and the dynamic and static semantic heads (the parts
:mod:`~semflow_ns.model_components.adaptation` calls scene-independent). They see the rays of every scene, so
they learn from all the scenes' labels and flows.

Rays are routed by the ``scene`` entry that the multi-scene DataParser puts in the camera metadata: a batch
of rays from several scenes is split into one sub-batch per scene, each scene model renders and scores its
own rays, and the losses and metrics are the scene values weighted by their share of the rays. Memory and
step time therefore follow the number of rays, not of scenes. Cameras without a scene (the viewer's, camera
paths) render the scene chosen in the viewer panel, or ``render_scene``.

Distributed training: a scene missing from a step's rays leaves its fields without gradients that step. The
pixel sampler takes a frame of every scene before a second of any, so with ``--machine.num-devices`` > 1 keep
the number of scenes at most ``num-frames-per-batch``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any, Optional

import torch
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackAttributes
from nerfstudio.models.base_model import Model
from torch import Tensor, nn
from torch.nn import Parameter

from semflow_ns.data.dataparsers.multi_scene import SCENE_KEY, SceneData
from semflow_ns.model_components.adaptation import PARTS, AdaptationConfig, module_at, source_uses_field_features
from semflow_ns.model_components.editing import SceneEdit
from semflow_ns.models.model_config import SemanticFlowModelConfig, partial_labels
from semflow_ns.models.semflow_model import SemanticFlowModel

SHARED_PARTS: tuple[str, ...] = tuple(path for paths in PARTS.values() for path in paths)
"""Dotted attribute paths of the modules that all scene models share."""


@dataclass
class MultiSceneModelConfig(SemanticFlowModelConfig):
    """Semantic Flow on several scenes: per-scene fields, shared semantic parts (see the module docstring)."""

    _target: type = field(default_factory=lambda: MultiSceneModel)
    render_scene: int = 0
    """Scene rendered for cameras that belong to no scene (viewer, camera paths) until the viewer panel picks
    another one."""

    def scene_config(self, first: bool, field_features: Optional[bool] = None) -> SemanticFlowModelConfig:
        """The configuration of one scene's model; only the first scene loads an adaptation source (the parts it
        loads are the shared ones). The scenes share their semantic heads, so the head's inputs are decided once
        for all (``field_features``, when the option is left to the data)."""
        values = {f.name: getattr(self, f.name) for f in fields(SemanticFlowModelConfig) if f.init}
        values.pop("_target")
        if not first:
            values["adaptation"] = AdaptationConfig()
        if values["semantic_field_features"] is None:
            values["semantic_field_features"] = field_features
        return SemanticFlowModelConfig(**values)

    def shared_field_features(self, scenes: list[SceneData]) -> bool:
        """Whether the shared dynamic semantic head sees the field features: as given; else as the adaptation
        source's head; else True unless some scene has frames without training labels (as for one scene)."""
        if self.semantic_field_features is not None:
            return self.semantic_field_features
        flow_dim = self.scene_flow.window * self.attention.d_model
        source = source_uses_field_features(self.adaptation, self.dynamic_field.feature_dim, flow_dim)
        if source is not None:
            return source
        labelled = [s.video.labelled for s in scenes]
        return not any(partial_labels(flags) for flags in labelled)


def _set(module: nn.Module, path: str, value: nn.Module) -> None:
    *parents, name = path.split(".")
    for parent in parents:
        module = getattr(module, parent)
    setattr(module, name, value)


def share_parts(models: list[SemanticFlowModel]) -> list[str]:
    """Makes every model use the first model's semantic parts; returns the paths shared."""
    shared = []
    for path in SHARED_PARTS:
        first = module_at(models[0], path)
        if first is None:  # e.g. no frame encoder with semantic_source "point"
            continue
        for model in models[1:]:
            _set(model, path, first)
        shared.append(path)
    return shared


class MultiSceneModel(Model):
    """Several :class:`SemanticFlowModel` scene models with shared semantic parts, one nerfstudio model."""

    config: MultiSceneModelConfig

    def populate_modules(self) -> None:
        super().populate_modules()
        # nerfstudio's Model.forward applies self.collider before get_outputs; the base class builds one with
        # ModelConfig's default planes (2, 6), which would override every scene's own near and far
        self.collider = None
        metadata = self.kwargs.get("metadata", {})
        scenes: list[SceneData] = metadata["semflow_scenes"]
        num_instance_ids = max((i.id + 1 for scene in scenes for i in scene.info.instances), default=0)
        field_features = self.config.shared_field_features(scenes)
        models = [
            self.config.scene_config(first=index == 0, field_features=field_features).setup(
                scene_box=scene.scene_box,
                num_train_data=scene.num_train_images,
                metadata={"semflow_video": scene.video, "semflow_scene": scene.info, "semantics": scene.semantics},
                device=self.kwargs.get("device"),
                num_instance_ids=num_instance_ids,
            )
            for index, scene in enumerate(scenes)
        ]
        self.shared_parts = share_parts(models)
        self.scenes = nn.ModuleList(models)
        self.scene_names = [scene.name for scene in scenes]
        # the training split is the scenes' videos one after the other: a scene's first camera index
        starts = torch.tensor([0] + [scene.num_train_images for scene in scenes]).cumsum(0)[:-1]
        self.register_buffer("train_starts", starts, persistent=False)
        if not 0 <= self.config.render_scene < len(scenes):
            raise ValueError(f"render_scene: {self.config.render_scene} is not a scene index (0-{len(scenes) - 1})")
        self.viewer_scene = self.config.render_scene
        first = models[0]
        self.class_names = first.class_names
        self.class_colors = first.class_colors
        from semflow_ns.viewer.panel import build_multi_scene_panel  # viewer elements: only for a built model

        self.semantic_flow_panel = build_multi_scene_panel(self)

    def scene_models(self) -> list[SemanticFlowModel]:
        return list(self.scenes)  # type: ignore[arg-type]

    def set_edit(self, edit: SceneEdit, removed_instances: Optional[list[set[int]]] = None) -> None:
        """Applies ``edit`` to every scene; ``removed_instances`` (one set per scene) replaces its instances."""
        for index, model in enumerate(self.scene_models()):
            instances = edit.removed_instances if removed_instances is None else removed_instances[index]
            model.edit = SceneEdit(edit.removed_classes, set(instances), edit.highlighted_classes, edit.dim)

    # ------------------------------------------------------------------------------------------
    # parameters and callbacks

    def get_param_groups(self) -> dict[str, list[Parameter]]:
        groups: dict[str, list[Parameter]] = {}
        seen: set[int] = set()
        for model in self.scene_models():
            for name, params in model.get_param_groups().items():
                for param in params:
                    if id(param) not in seen:  # the shared parts are in every scene's "semantics" group
                        seen.add(id(param))
                        groups.setdefault(name, []).append(param)
        return groups

    def get_training_callbacks(
        self, training_callback_attributes: TrainingCallbackAttributes
    ) -> list[TrainingCallback]:
        return [
            callback
            for model in self.scene_models()
            for callback in model.get_training_callbacks(training_callback_attributes)
        ]

    def update_to_step(self, step: int) -> None:
        for model in self.scene_models():
            model.update_to_step(step)

    # ------------------------------------------------------------------------------------------
    # rendering: one sub-batch per scene

    def ray_scenes(self, ray_bundle: RayBundle) -> Tensor:
        """Scene index of every ray: from the ray metadata, else the scene chosen for rendering."""
        metadata = ray_bundle.metadata or {}
        if SCENE_KEY in metadata:
            return metadata[SCENE_KEY][..., 0].long()
        return torch.full(ray_bundle.shape, self.viewer_scene, dtype=torch.long, device=ray_bundle.origins.device)

    def get_outputs(self, ray_bundle: RayBundle) -> dict[str, Any]:
        scenes = self.ray_scenes(ray_bundle)
        per_scene = []
        for index in torch.unique(scenes).tolist():
            rows = torch.nonzero(scenes == index)[:, 0]
            rays = ray_bundle[rows]
            if self.training and rays.camera_indices is not None:  # the scene model's own camera numbering
                rays.camera_indices = rays.camera_indices - self.train_starts[index]
            per_scene.append((index, rows, self.scene_models()[index].get_outputs(rays)))
        outputs: dict[str, Any] = {"per_scene": per_scene}
        if len(per_scene) == 1:
            outputs.update({k: v for k, v in per_scene[0][2].items() if isinstance(v, Tensor)})
            return outputs
        num_rays = len(scenes)
        shared = set.intersection(*({k for k, v in out.items() if isinstance(v, Tensor)} for _, _, out in per_scene))
        for key in shared:
            first = per_scene[0][2][key]
            merged = first.new_zeros((num_rays, *first.shape[1:]))
            for _, rows, out in per_scene:
                merged[rows] = out[key]
            outputs[key] = merged
        return outputs

    def _sub_batch(self, batch: dict[str, Any], index: int, rows: Tensor) -> dict[str, Any]:
        """The part of a ray batch that belongs to scene ``index`` (training cameras renumbered for it)."""
        num_rays = batch["image"].shape[0]
        sub = {
            key: value[rows.to(value.device)] if isinstance(value, Tensor) and value.shape[:1] == (num_rays,) else value
            for key, value in batch.items()
        }
        if self.training and "indices" in sub:  # (camera, y, x): the camera in the scene model's own numbering
            sub["indices"] = sub["indices"].clone()
            sub["indices"][:, 0] -= self.train_starts[index].to(sub["indices"].device)
        return sub

    def _weighted(self, outputs: dict[str, Any], batch: dict[str, Any], values_of) -> tuple[dict[str, Tensor], list]:
        """Σ over scenes of each value weighted by the scene's share of the rays (0 for scenes without the key),
        and every scene's own values."""
        per_scene = outputs["per_scene"]
        total = sum(len(rows) for _, rows, _ in per_scene)
        results = [
            (len(rows) / total, values_of(self.scene_models()[index], out, self._sub_batch(batch, index, rows)))
            for index, rows, out in per_scene
        ]
        keys = sorted(set().union(*(values for _, values in results)))
        weighted = {key: sum(w * values[key] for w, values in results if key in values) for key in keys}
        return weighted, [values for _, values in results]  # type: ignore[return-value]

    def get_metrics_dict(self, outputs, batch) -> dict[str, Tensor]:
        metrics, scene_metrics = self._weighted(
            outputs, batch, lambda model, out, sub: model.get_metrics_dict(out, sub)
        )
        for (index, _, _), values in zip(outputs["per_scene"], scene_metrics, strict=True):
            metrics[f"psnr_{self.scene_names[index]}"] = values["psnr"]
        return metrics

    def get_loss_dict(self, outputs, batch, metrics_dict=None) -> dict[str, Tensor]:
        # the interlevel and distortion losses are linear in the metrics of the same names, so every scene can
        # take the ray-weighted mean of them: Σ_s w_s (c · m) = c · Σ_s w_s m_s
        losses, _ = self._weighted(outputs, batch, lambda model, out, sub: model.get_loss_dict(out, sub, metrics_dict))
        return losses

    # ------------------------------------------------------------------------------------------
    # whole images (evaluation, viewer, ns-render)

    def camera_scene(self, camera: Cameras) -> int:
        """The scene of a camera: its ``scene`` metadata, else the scene chosen for rendering."""
        metadata = camera.metadata or {}
        if SCENE_KEY not in metadata:
            return self.viewer_scene
        scenes = torch.unique(metadata[SCENE_KEY])
        if len(scenes) != 1:
            raise ValueError(f"the cameras rendered together belong to scenes {scenes.tolist()}: render one at a time")
        return int(scenes[0])

    @torch.no_grad()
    def get_outputs_for_camera(self, camera: Cameras, obb_box=None) -> dict[str, Tensor]:
        index = self.camera_scene(camera)
        metadata = {k: v for k, v in (camera.metadata or {}).items() if k != SCENE_KEY}
        camera = dataclasses.replace(camera, metadata=metadata or None)
        outputs = self.scene_models()[index].get_outputs_for_camera(camera, obb_box=obb_box)
        outputs["scene"] = torch.full_like(outputs["accumulation"], float(index))
        return outputs

    def get_image_metrics_and_images(
        self, outputs: dict[str, Tensor], batch: dict[str, Any]
    ) -> tuple[dict[str, float], dict[str, Tensor]]:
        index = int(outputs["scene"].flatten()[0])
        return self.scene_models()[index].get_image_metrics_and_images(outputs, batch)

    get_rgba_image = SemanticFlowModel.get_rgba_image
