"""Object removal scored against ground truth, on the held-out views of a demo scene.

For each view the model renders the view twice, as it is and with the chosen classes / instances removed
(the same edit as the viewer and ``semflow-render``), and the demo generator renders the true view without
those objects (:func:`semflow_ns.data.demo.edits.removal_renderer`). The view's pixels split in two:

- **revealed**: pixels that showed a removed object in the original view. The edited render is compared with
  the true background there (``revealed_psnr``, ``revealed_ssim``);
- **rest**: every other pixel, which removal must leave alone. ``rest_psnr_unchanged`` compares the edited
  render with the unedited render (∞ when identical), ``rest_psnr`` with the true view.

PSNR is over the pixels of a region; SSIM is the mean of the SSIM map over the region. Views where no removed
object is visible have no revealed scores. Means over views average PSNRs as errors (:func:`mean_scores`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from nerfstudio.pipelines.base_pipeline import Pipeline
from torch import Tensor
from torchmetrics.functional.image import structural_similarity_index_measure

from semflow_ns.data.demo.edits import removal_renderer
from semflow_ns.data.format import FrameRecord, SceneDescription, read_label_image
from semflow_ns.model_components.edit_names import EditRequest, resolve_edit
from semflow_ns.model_components.editing import SceneEdit

SCORES = ("revealed_psnr", "revealed_ssim", "rest_psnr_unchanged", "rest_psnr", "rest_ssim")


def masked_psnr(a: Tensor, b: Tensor, mask: Tensor) -> float:
    """PSNR (images in [0, 1]) over the pixels where ``mask`` [H, W] is true; inf for identical pixels."""
    error = float(((a - b) ** 2)[mask].mean())
    return math.inf if error == 0.0 else -10.0 * math.log10(error)


def masked_ssim(a: Tensor, b: Tensor, mask: Tensor) -> float:
    """Mean of the SSIM map of [H, W, 3] images over ``mask``."""
    _, full = structural_similarity_index_measure(
        a.permute(2, 0, 1)[None], b.permute(2, 0, 1)[None], data_range=1.0, return_full_image=True
    )
    return float(full[0].mean(dim=0)[mask].mean())  # type: ignore[index]


def removed_mask(frame: FrameRecord, edit: SceneEdit) -> np.ndarray:
    """Pixels of a held-out view whose ground-truth class or instance is removed."""
    mask = np.zeros((frame.intrinsics.h, frame.intrinsics.w), dtype=bool)
    if frame.semantics is not None and edit.removed_classes:
        mask |= np.isin(read_label_image(frame.semantics), sorted(edit.removed_classes))
    if frame.instances is not None and edit.removed_instances:
        mask |= np.isin(read_label_image(frame.instances), sorted(edit.removed_instances))
    return mask


@torch.no_grad()
def score_removal(
    pipeline: Pipeline, scene: SceneDescription, classes: Sequence[str] = (), instances: Sequence[str] = ()
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Scores removing ``classes`` / ``instances`` on every image of the pipeline's evaluation split.

    Returns:
        Means over the views that have each score, and one row per view (``image``, ``time``, ``view_set``,
        ``revealed_pixels`` and :data:`SCORES`).

    Raises:
        EditError: a name the scene does not have; ValueError: not a demo scene or not removable.
    """
    model, datamanager = pipeline.model, pipeline.datamanager
    frames = datamanager.eval_dataset.metadata["semflow_frames"]  # type: ignore[attr-defined]
    edit = resolve_edit(EditRequest(tuple(classes), tuple(instances)), model.class_names, scene.instances)
    names = {i.id: i.name for i in scene.instances}
    instance_names = [names[i] for i in sorted(edit.removed_instances)]
    class_names = [model.class_names[c] for c in sorted(edit.removed_classes)]
    render_truth = removal_renderer(scene, class_names, instance_names)  # checks the names before rendering
    rows = []
    model.eval()
    for camera, batch in datamanager.fixed_indices_eval_dataloader:  # type: ignore[attr-defined]
        index = int(batch["image_idx"])
        frame = frames[index]
        truth_view = render_truth(frame)
        model.edit = SceneEdit()
        original = model.get_outputs_for_camera(camera=camera)["rgb"].cpu()
        model.edit = edit
        edited = model.get_outputs_for_camera(camera=camera)["rgb"].cpu()
        truth = torch.from_numpy(truth_view.rgb).float() / 255.0
        revealed = torch.from_numpy(removed_mask(frame, edit))
        rest = ~revealed
        row: dict[str, Any] = {"image": index, "time": frame.time, "view_set": frame.view_set}
        row["revealed_pixels"] = int(revealed.sum())
        if revealed.any():
            row["revealed_psnr"] = masked_psnr(edited, truth, revealed)
            row["revealed_ssim"] = masked_ssim(edited, truth, revealed)
        row["rest_psnr_unchanged"] = masked_psnr(edited, original, rest)
        row["rest_psnr"] = masked_psnr(edited, truth, rest)
        row["rest_ssim"] = masked_ssim(edited, truth, rest)
        rows.append(row)
    model.edit = SceneEdit()
    model.train()
    return mean_scores(rows), rows


def mean_scores(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Means over the views that have each score; PSNRs are averaged as errors (the PSNR of the mean of the
    views' mean squared errors), so that views left exactly unchanged (PSNR ∞) count as zero error."""
    means = {}
    for key in SCORES:
        values = np.array([r[key] for r in rows if key in r], dtype=np.float64)
        if not values.size:
            continue
        if key.endswith("psnr") or key.endswith("psnr_unchanged"):
            error = float(np.mean(10.0 ** (-values / 10.0)))
            means[key] = math.inf if error == 0.0 else -10.0 * math.log10(error)
        else:
            means[key] = float(values.mean())
    return means
