"""Whole-image outputs of the model: the optical-flow image, evaluation metrics and comparison images.

Used by :meth:`SemanticFlowModel.get_outputs_for_camera` (viewer, `ns-render`, evaluation) and
:meth:`SemanticFlowModel.get_image_metrics_and_images` (`ns-eval`, evaluation during training).
Semantic metrics are the paper's (mIoU, accuracies); the object scores J, F, J&F are DAVIS's.
"""

from typing import TYPE_CHECKING, Any

import torch
from jaxtyping import Float
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.utils import colormaps
from torch import Tensor
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from semflow_ns.field_components.flow_aggregation import VideoCameras
from semflow_ns.model_components import metrics as segmentation
from semflow_ns.utils.colors import flow_to_rgb

if TYPE_CHECKING:
    from semflow_ns.models.semflow_model import SemanticFlowModel


def flow_image(
    camera: Cameras, points: Float[Tensor, "*bs 3"], points_next: Float[Tensor, "*bs 3"]
) -> Float[Tensor, "*bs 3"]:
    """Colour image of the 2D motion seen by ``camera`` between t and one frame later."""
    view = VideoCameras(camera.to(points.device).flatten())
    frames = torch.zeros(points.shape[:-1], dtype=torch.long, device=points.device)
    flow = view.project(points_next, frames)[0] - view.project(points, frames)[0]
    return flow_to_rgb(flow)


def displayable_semantics(logits: Float[Tensor, "*bs num_classes"]) -> Float[Tensor, "*bs channels"]:
    """The ``semantics`` output as the viewer and `ns-render` can show it: 2-channel logits get a third channel
    (their minimum), which leaves the argmax unchanged."""
    if logits.shape[-1] != 2:
        return logits
    return torch.cat([logits, logits.min(dim=-1, keepdim=True).values], dim=-1)


def image_metrics_and_images(
    model: "SemanticFlowModel", outputs: dict[str, Tensor], batch: dict[str, Any]
) -> tuple[dict[str, float], dict[str, Tensor]]:
    """PSNR, SSIM and the segmentation metrics of one rendered image, and the side-by-side comparison images."""
    rgb = outputs["rgb"]
    image = model.target_rgb(batch["image"]).to(rgb.device)
    pred_nchw, gt_nchw = rgb.permute(2, 0, 1)[None], image.permute(2, 0, 1)[None]
    metrics = {
        "psnr": float(peak_signal_noise_ratio(pred_nchw, gt_nchw, data_range=1.0)),
        "ssim": float(structural_similarity_index_measure(pred_nchw, gt_nchw, data_range=1.0)),
    }
    images = {"img": torch.cat([image, rgb], dim=1)}
    if "semantics" in batch:
        labels = batch["semantics"].to(rgb.device)[..., 0]
        pred = outputs["semantics"].argmax(dim=-1)
        metrics.update(segmentation_metrics(model, pred, labels, outputs, batch))
        gt_colors = model.class_colors[labels.clamp(min=0)] * (labels >= 0)[..., None]
        images["semantics"] = torch.cat([gt_colors, outputs["semantics_colormap"]], dim=1)
    images["depth"] = colormaps.apply_depth_colormap(outputs["depth"], accumulation=outputs["accumulation"])
    return metrics, images


def segmentation_metrics(
    model: "SemanticFlowModel", pred: Tensor, labels: Tensor, outputs: dict[str, Tensor], batch: dict[str, Any]
) -> dict[str, float]:
    """mIoU (all classes, and foreground only), accuracies, and the DAVIS scores J, F, J&F of the objects.

    Objects are the instances when the scene has instance labels, else the moving classes (one object
    for a binary foreground/background scene).
    """
    fg = model.scene_info.dynamic_class_ids
    objects: dict[str, Any] = {"object_ids": fg}
    if model.num_instance_ids and "instances" in batch and "instances" in outputs:
        matches = (outputs["instances"][..., None, :] == model.instance_colors[: model.num_instance_ids]).all(-1)
        objects = {
            "object_ids": [i.id for i in model.scene_info.instances],
            "pred_objects": matches.float().argmax(dim=-1),  # the colour output back to instance ids
            "target_objects": batch["instances"].to(pred.device)[..., 0],
        }
    metrics = segmentation.image_metrics(pred, labels, len(model.class_names), fg, **objects)
    if model.config.eval_foreground_only:  # the headline scores follow the foreground protocol
        metrics.update(segmentation.semantic_metrics(pred, labels, len(model.class_names), merge_into_background=fg))
    return metrics
