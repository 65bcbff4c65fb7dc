"""nerfstudio's pipeline for a multi-scene run, with evaluation metrics per scene and over all images.

`ns-eval` (and the evaluations during training) average each metric over the evaluation images; here
every scene's images are averaged first (``psnr/<scene>``, ...), and the overall mean and standard
deviation are then pooled from the scene values, so that each image still counts once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from nerfstudio.data.utils.dataloaders import FixedIndicesEvalDataloader
from nerfstudio.pipelines.base_pipeline import VanillaPipeline, VanillaPipelineConfig

from semflow_ns.data.dataparsers.multi_scene import SCENE_KEY


@dataclass
class MultiScenePipelineConfig(VanillaPipelineConfig):
    """VanillaPipeline whose image metrics are also reported per scene."""

    _target: type = field(default_factory=lambda: MultiScenePipeline)


def pooled(counts: list[int], means: list[float], stds: Optional[list[float]]) -> tuple[float, Optional[float]]:
    """Mean (and unbiased standard deviation) of all values of several groups, from each group's size, mean and
    unbiased standard deviation."""
    total = sum(counts)
    mean = sum(n * m for n, m in zip(counts, means, strict=True)) / total
    if stds is None:
        return mean, None
    within = sum((n - 1) * (s if math.isfinite(s) else 0.0) ** 2 for n, s in zip(counts, stds, strict=True))
    between = sum(n * (m - mean) ** 2 for n, m in zip(counts, means, strict=True))
    return mean, math.sqrt((within + between) / max(total - 1, 1))


class MultiScenePipeline(VanillaPipeline):
    """Adds per-scene means (``<metric>/<scene>``) to nerfstudio's image metrics."""

    def get_average_image_metrics(
        self,
        data_loader,
        image_prefix: str,
        step: Optional[int] = None,
        output_path: Optional[Path] = None,
        get_std: bool = False,
    ):
        dataset = data_loader.input_dataset
        indices = list(getattr(data_loader, "image_indices", range(len(dataset))))
        scenes = dataset.cameras.metadata[SCENE_KEY][:, 0].tolist()
        names = self.model.scene_names
        per_scene = []
        for index, name in enumerate(names):
            own = tuple(i for i in indices if scenes[i] == index)
            if not own:
                continue
            loader = FixedIndicesEvalDataloader(dataset, image_indices=own, device=data_loader.device)
            metrics = super().get_average_image_metrics(loader, f"{image_prefix}_{name}", step, output_path, get_std)
            per_scene.append((name, len(own), metrics))
        results: dict[str, float] = {}
        counts = [count for _, count, _ in per_scene]
        keys = [k for k in per_scene[0][2] if not k.endswith("_std")]
        for key in keys:
            if not all(key in metrics for _, _, metrics in per_scene):
                continue
            means = [metrics[key] for _, _, metrics in per_scene]
            stds = [metrics[f"{key}_std"] for _, _, metrics in per_scene] if get_std else None
            mean, std = pooled(counts, means, stds)
            results[key] = mean
            if std is not None:
                results[f"{key}_std"] = std
            for name, _, metrics in per_scene:
                results[f"{key}/{name}"] = metrics[key]
        return results
