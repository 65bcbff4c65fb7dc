"""``semflow-eval``: `ns-eval` for Semantic Flow runs, with the label-subset protocol of the paper.

`ns-eval --load-config RUN/config.yml` already reports PSNR, SSIM, mIoU, total accuracy and
class-average accuracy (per image, then averaged; README, "Evaluation") over the run's evaluation images.
`semflow-eval` writes the same JSON and adds:

- ``frames``: the 0-based video frame of every evaluated image (held-out views: the frame at their
  time), so results can be matched to label subsets without the official code's 1-based mix-up;
- when the run trained on a label subset (``--label-frames``), ``results_unlabelled`` and
  ``frames_unlabelled``: the same metrics on the training frames whose labels were withheld
  (the semantic-completion / tracking protocol), scored against their ground truth;
- ``--eval-source``: score another split than the run's (``held-out``, ``video``, ``unlabelled``).

Next to ns-eval's scores, every image gets the foreground-only mIoU (``miou_fg``: static classes merged into
class 0) and, where the scene has objects (instances, else moving classes), the DAVIS scores ``j``, ``f`` and
``jf`` (:mod:`semflow_ns.model_components.metrics`). Means (``results``) ignore images where a score is
undefined; the per-image scores go to a CSV next to the JSON (``--csv-path``, default ``<output>.csv``), one
row per image with its split, its position in the split and its 0-based video frame. Held-out views that
belong to named groups (the demo's ``nearby`` and ``novel`` views) are also averaged per group
(``results_by_view_set``). On a demo scene, ``--remove-classes`` / ``--remove-instances`` add ``removal``:
removing those objects scored against the true background (:mod:`semflow_ns.eval.removal`).

Example::

    semflow-eval --load-config RUN/config.yml --output-path eval.json
"""

import csv
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from time import perf_counter
from typing import Any, Optional

import numpy as np
import torch
import torchvision.utils as vutils
import tyro
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.pipelines.base_pipeline import Pipeline
from nerfstudio.scripts.eval import ComputePSNR
from nerfstudio.utils.eval_utils import eval_setup
from rich.console import Console

from semflow_ns.data.dataparsers.multi_scene import SCENE_KEY
from semflow_ns.data.dataparsers.splits import EvalSource
from semflow_ns.data.format import FrameRecord, SceneDescription, SceneFormatError, load_scene
from semflow_ns.scripts.runs import RunError, edited_config_file, load_run_config


def _set_eval_source(config: TrainerConfig, source: Optional[EvalSource]) -> None:
    if source is not None:
        config.pipeline.datamanager.dataparser.eval_source = source  # type: ignore[attr-defined]


def _eval_frames(config: TrainerConfig, source: Optional[EvalSource]) -> list[FrameRecord]:
    """The evaluation images of ``config`` with ``source`` (None: the run's own setting)."""
    parser = config.pipeline.datamanager.dataparser
    if source is not None:
        parser.eval_source = source  # type: ignore[attr-defined]
    return parser.setup().get_dataparser_outputs(split="test").metadata["semflow_frames"]


def frame_ids(frames: Sequence[FrameRecord], video_times: np.ndarray) -> list[int]:
    """0-based index of the video frame nearest in time to each image."""
    return [int(np.abs(video_times - f.time).argmin()) for f in frames]


SCORE_COLUMNS = ("psnr", "ssim", "miou", "miou_fg", "total_accuracy", "class_accuracy", "j", "f", "jf")
"""Per-image scores in CSV column order (those an image does not have stay empty)."""


def mean_scores(rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> dict[str, float]:
    """Mean and standard deviation (``<key>_std``) of each key over the rows that have a finite value."""
    out: dict[str, float] = {}
    for key in keys:
        values = np.array([float(r[key]) for r in rows if key in r], dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size == 0:
            continue
        out[key] = float(values.mean())
        out[f"{key}_std"] = float(values.std(ddof=1)) if values.size > 1 else 0.0
    return out


@dataclass
class RunVideos:
    """The video frame times of a run's scenes, to give every evaluated image its 0-based video frame."""

    times: list[np.ndarray]
    """One array per scene (one scene unless the run is a multi-scene run)."""
    names: Optional[list[str]] = None
    """Scene names of a multi-scene run (None: a single-scene run)."""


def load_run_videos(config: TrainerConfig) -> RunVideos:
    """The :class:`RunVideos` of a run, from its DataParser's training split."""
    metadata = config.pipeline.datamanager.dataparser.setup().get_dataparser_outputs(split="train").metadata
    scenes = metadata.get("semflow_scenes")
    if scenes:
        return RunVideos([s.video.times.numpy() for s in scenes], [s.name for s in scenes])
    return RunVideos([metadata["semflow_video"].times.numpy()])


def scaled_eval_images(pipeline: Pipeline, scale: float) -> Any:
    """The evaluation images of ``pipeline`` with cameras, images and labels resized by ``scale``."""
    from nerfstudio.data.utils.dataloaders import FixedIndicesEvalDataloader

    dataset = pipeline.datamanager.eval_dataset  # type: ignore[attr-defined]
    scaled = type(dataset)(dataset._dataparser_outputs, scale_factor=scale)
    return FixedIndicesEvalDataloader(scaled, device=pipeline.device)


@torch.no_grad()
def score_images(
    pipeline: Pipeline, videos: RunVideos, output: Optional[Path] = None, scale: float = 1.0
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Scores every image of the pipeline's evaluation split (as ns-eval does) and keeps each image's scores.

    Args:
        pipeline: a loaded pipeline.
        videos: video frame times of the run's scenes, to give every image its 0-based video frame.
        output: folder for the rendered comparison images (None: not written).
        scale: render and score at this fraction of the images' resolution (ground truth resized: colour
            bicubic, labels nearest); 1: full resolution.

    Returns:
        The means (with ``_std``) and one row per image: ``image`` (position in the split), ``frame``, ``time``,
        ``view_set`` (a held-out view's group, e.g. ``nearby`` or ``novel``; else empty), ``scene`` (its scene's
        name, multi-scene runs only) and its scores.
    """
    model, datamanager = pipeline.model, pipeline.datamanager
    frames = datamanager.eval_dataset.metadata["semflow_frames"]  # type: ignore[attr-defined]
    rows: list[dict[str, Any]] = []
    model.eval()
    images = datamanager.fixed_indices_eval_dataloader if scale == 1.0 else scaled_eval_images(pipeline, scale)
    for camera, batch in images:  # type: ignore[attr-defined]
        start = perf_counter()
        outputs = model.get_outputs_for_camera(camera=camera)
        metrics, images = model.get_image_metrics_and_images(outputs, batch)
        metrics["fps"] = 1.0 / (perf_counter() - start)
        index = int(batch["image_idx"])
        time = float(frames[index].time)
        scene = _scene_of(camera)
        frame = frame_ids([frames[index]], videos.times[scene])[0]
        row = {"image": index, "frame": frame, "time": time, "view_set": frames[index].view_set}
        rows.append(row | ({"scene": videos.names[scene]} if videos.names else {}) | metrics)
        if output is not None:
            for key, image in images.items():
                vutils.save_image(image.permute(2, 0, 1).cpu(), output / f"eval_{key}_{index:04d}.png")
    model.train()
    return mean_scores(rows, score_keys(rows)), rows


def _scene_of(camera: Cameras) -> int:
    """The scene index of an evaluation camera (0 in single-scene runs)."""
    metadata = camera.metadata or {}
    return int(metadata[SCENE_KEY].flatten()[0]) if SCENE_KEY in metadata else 0


ROW_COLUMNS = ("image", "frame", "time", "view_set", "scene")
"""Columns of a scored row that are not scores."""


def score_keys(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The score columns of rows made by :func:`score_images`."""
    return [k for k in rows[0] if k not in ROW_COLUMNS] if rows else []


def means_by_scene(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """:func:`mean_scores` of each scene's rows (multi-scene runs; empty without scenes)."""
    names = list(dict.fromkeys(r["scene"] for r in rows if "scene" in r))
    return {name: mean_scores([r for r in rows if r.get("scene") == name], score_keys(rows)) for name in names}


def means_by_view_set(
    rows: Sequence[dict[str, Any]], mean: Optional[Callable[[Sequence[dict[str, Any]]], dict[str, float]]] = None
) -> dict[str, dict[str, float]]:
    """``mean`` (default: :func:`mean_scores` over :func:`score_keys`) of the rows of each named view set
    (held-out views only; empty without)."""
    mean = mean if mean is not None else (lambda group: mean_scores(group, score_keys(rows)))
    sets = sorted({r["view_set"] for r in rows if r.get("view_set")})
    return {name: mean([r for r in rows if r.get("view_set") == name]) for name in sets}


def write_csv(path: Path, splits: dict[str, list[dict[str, Any]]]) -> None:
    """One row per scored image: split, image, frame, time, view set, (multi-scene runs) scene, then
    :data:`SCORE_COLUMNS`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scenes = any("scene" in row for rows in splits.values() for row in rows)
    with path.open("w", newline="", encoding="utf8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["split", "image", "frame", "time", "view_set", *(["scene"] if scenes else []), *SCORE_COLUMNS])
        for split, rows in splits.items():
            for row in rows:
                scores = ["" if row.get(k) is None else f"{float(row[k]):.6g}" for k in SCORE_COLUMNS]
                where = [row.get("scene", "")] if scenes else []
                writer.writerow(
                    [split, row["image"], row["frame"], f"{row['time']:.6g}", row.get("view_set", ""), *where, *scores]
                )


@dataclass
class SemanticEval(ComputePSNR):
    """Load a Semantic Flow checkpoint, score colour and semantics on its evaluation images (and, after
    training on a label subset, on the frames whose labels were withheld), and save the scores as JSON."""

    eval_source: Optional[EvalSource] = None
    """Images to score instead of the run's evaluation split: held-out | video | unlabelled."""
    unlabelled: bool = True
    """After training on a label subset, also score the frames whose labels were withheld."""
    csv_path: Optional[Path] = None
    """Where the per-image scores go (default: the JSON's path with the suffix .csv)."""
    remove_classes: tuple[str, ...] = ()
    """Demo scenes: also score removing these classes from the evaluation views against the true background."""
    remove_instances: tuple[str, ...] = ()
    """Demo scenes: the same for instances (names as in transforms.json)."""
    render_scale: float = 1.0
    """Render and score at this fraction of the resolution (e.g. 0.5: four times faster; ground truth resized:
    colour bicubic, labels nearest). Scores at another scale are not comparable with full-resolution ones."""

    def _check_removal(self, config: TrainerConfig) -> Optional[SceneDescription]:
        """The run's demo scene when removal is to be scored (names checked), else None."""
        if not (self.remove_classes or self.remove_instances):
            return None
        from semflow_ns.data.demo.edits import removal_renderer

        scene = load_scene(config.pipeline.datamanager.dataparser.data)  # type: ignore[attr-defined]
        try:
            removal_renderer(scene, self.remove_classes, self.remove_instances)
        except ValueError as err:
            raise RunError(f"--remove-classes/--remove-instances: {err}") from err
        return scene

    def _score_removal(self, pipeline: Pipeline, scene: SceneDescription) -> dict[str, Any]:
        from semflow_ns.eval import removal

        means, rows = removal.score_removal(pipeline, scene, self.remove_classes, self.remove_instances)
        return {
            "classes": list(self.remove_classes),
            "instances": list(self.remove_instances),
            "results": means,
            "by_view_set": means_by_view_set(rows, removal.mean_scores),
            "per_view": rows,
        }

    @contextmanager
    def _pipeline(self, source: Optional[EvalSource]) -> Iterator[tuple[Pipeline, str]]:
        """The run's pipeline (and checkpoint) with the evaluation images of ``source``."""
        with edited_config_file(self.load_config, partial(_set_eval_source, source=source)) as copy:
            _, pipeline, checkpoint, _ = eval_setup(copy)
            yield pipeline, str(checkpoint)

    def _score(self, pipeline: Pipeline, key: str, videos: RunVideos) -> dict:
        """Metrics over the pipeline's evaluation images; images go to render_output_path/key; the per-image rows
        are kept in ``self._rows[key]``."""
        output = None if self.render_output_path is None else self.render_output_path / key
        if output is not None:
            output.mkdir(parents=True, exist_ok=True)
        if not 0.0 < self.render_scale <= 1.0:
            raise RunError(f"--render-scale must lie in (0, 1], got {self.render_scale}")
        metrics, self._rows[key] = score_images(pipeline, videos, output, self.render_scale)
        return metrics

    def report(self) -> dict:
        """The JSON content: ns-eval's keys, the evaluated frames, and the unlabelled-frame scores."""
        config = load_run_config(self.load_config)
        videos = load_run_videos(config)
        report: dict = {"experiment_name": config.experiment_name, "method_name": config.method_name}
        removal_scene = self._check_removal(config)
        try:
            frames = _eval_frames(config, self.eval_source)
        except (SceneFormatError, ValueError) as err:
            raise RunError(f"--eval-source {self.eval_source}: {err}") from err
        self._rows: dict[str, list[dict[str, Any]]] = {}
        with self._pipeline(self.eval_source) as (pipeline, checkpoint):
            report["results"], report["checkpoint"] = self._score(pipeline, "eval", videos), checkpoint
            if removal_scene is not None:
                report["removal"] = self._score_removal(pipeline, removal_scene)
        assert len(frames) == len(self._rows["eval"])
        report["frames"] = [row["frame"] for row in self._rows["eval"]]
        by_set = means_by_view_set(self._rows["eval"])
        if by_set:
            report["results_by_view_set"] = by_set
        if videos.names:
            report["scenes"] = [row["scene"] for row in self._rows["eval"]]
            report["results_by_scene"] = means_by_scene(self._rows["eval"])
        parser = config.pipeline.datamanager.dataparser
        report["label_frames"] = getattr(parser, "label_frames", "all")
        report["eval_source"] = self.eval_source or getattr(parser, "eval_source", "auto")
        if self.unlabelled and report["eval_source"] != "unlabelled" and report["label_frames"] != "all":
            try:
                _eval_frames(load_run_config(self.load_config), "unlabelled")
            except (SceneFormatError, ValueError) as err:
                report["results_unlabelled"], report["note_unlabelled"] = None, str(err)
            else:
                with self._pipeline("unlabelled") as (pipeline, _):
                    report["results_unlabelled"] = self._score(pipeline, "unlabelled", videos)
                report["frames_unlabelled"] = [row["frame"] for row in self._rows["unlabelled"]]
                if videos.names:
                    report["results_unlabelled_by_scene"] = means_by_scene(self._rows["unlabelled"])
        return report

    def main(self) -> None:
        if self.output_path.suffix != ".json":
            raise RunError(f"--output-path must end in .json, got {self.output_path}")
        report = self.report()
        csv_path = self.csv_path or self.output_path.with_suffix(".csv")
        report["csv_path"] = str(csv_path)
        self.output_path.parent.mkdir(parents=True, exist_ok=True)
        self.output_path.write_text(json.dumps(report, indent=2), "utf8")
        write_csv(csv_path, self._rows)
        Console().print(f"Saved results to: {self.output_path} (per image: {csv_path})")


def run(command: SemanticEval, console: Optional[Console] = None) -> int:
    """Runs ``command``; returns the exit code (0 ok, 1 bad input, reported without a traceback)."""
    console = console if console is not None else Console()
    try:
        command.main()
    except RunError as err:
        console.print(f"[red]semflow-eval: {err}[/red]")
        return 1
    return 0


def entrypoint(args: Sequence[str] | None = None) -> None:
    """Console-script entry point; ``args`` defaults to the command line."""
    tyro.extras.set_accent_color("bright_yellow")
    sys.exit(run(tyro.cli(SemanticEval, prog="semflow-eval", args=args)))


if __name__ == "__main__":
    entrypoint()
