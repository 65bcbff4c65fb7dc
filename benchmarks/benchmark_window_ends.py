"""The frames whose trajectory windows reach past the video's ends, rendered with the missing tokens mirrored and
left empty (``--pipeline.model.attention.mirror-at-video-ends``).

For each trained run the benchmark takes the evaluation images of the video frames whose window reaches before
the first frame or after the last one (with the default window of three frames: the first and the last frame),
renders each twice, with the option on and off, and scores them as ``semflow-eval`` does. Every other frame
renders the same either way (``tests/test_model.py``), so the change of a run's mean J&F is the change at these
frames divided by the number of scored images, which the table gives too.

    python benchmarks/benchmark_window_ends.py outputs/*/semantic-flow/*/config.yml --render-scale 0.5
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional

import torch
import tyro
from rich.console import Console
from rich.table import Table

CONSOLE = Console(width=140)


@dataclass
class Args:
    """Window-ends options."""

    configs: tyro.conf.Positional[list[Path]]
    """``config.yml`` of each trained run."""
    eval_source: Optional[Literal["unlabelled", "video", "withheld"]] = None
    """Evaluation images as ``semflow-eval --eval-source`` (None: the run's own)."""
    render_scale: float = 1.0
    """Render and score at this fraction of the resolution (as ``semflow-eval --render-scale``)."""
    threads: int = 0
    """torch.set_num_threads (0: PyTorch's default)."""
    json_path: Optional[Path] = None
    """Also write the rows as JSON."""


def score_ends(config: Path, scale: float, source: Optional[str] = None) -> dict[str, Any]:
    """J and F of the evaluation images at the video's ends of one run, with the window's ends mirrored and empty."""
    from nerfstudio.utils.eval_utils import eval_setup

    from semflow_ns.scripts.eval import frame_ids, scaled_eval_images
    from semflow_ns.scripts.runs import edited_config_file

    def set_source(trainer_config: Any) -> None:
        if source is not None:
            trainer_config.pipeline.datamanager.dataparser.eval_source = source

    with edited_config_file(config, set_source) as copy:
        _, pipeline, _, _ = eval_setup(copy, test_mode="test")
    model = pipeline.model
    model.eval()
    times = model.timeline.times.cpu().numpy()  # the video frames the model's windows step through
    reach = model.dynamic.half_window
    images = list(scaled_eval_images(pipeline, scale))
    frames = frame_ids(pipeline.datamanager.eval_dataset.metadata["semflow_frames"], times)
    row: dict[str, Any] = {"config": str(config), "scored_images": len(images), "ends": []}
    for camera, batch in images:
        frame = frames[int(batch["image_idx"])]
        if reach <= frame < len(times) - reach:
            continue
        end: dict[str, Any] = {"frame": frame}
        for mirror in (False, True):
            model.dynamic.attention.config.mirror_at_video_ends = mirror
            with torch.no_grad():
                metrics, _ = model.get_image_metrics_and_images(model.get_outputs_for_camera(camera=camera), batch)
            end["mirrored" if mirror else "empty"] = {key: float(metrics[key]) for key in ("j", "f", "jf")}
        row["ends"].append(end)
    gained = sum(end["mirrored"]["jf"] - end["empty"]["jf"] for end in row["ends"])
    row["run_jf_change"] = gained / max(len(images), 1)
    return row


def main(args: Args) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = [score_ends(config, args.render_scale, args.eval_source) for config in args.configs]
    table = Table(title="Frames whose windows reach past the video's ends: J / F, left empty and mirrored")
    for column in ("run", "frame", "empty J / F", "mirrored J / F", "run's J&F change"):
        table.add_column(column)
    for row in rows:
        for i, end in enumerate(row["ends"]):
            empty, mirrored = end["empty"], end["mirrored"]
            table.add_row(
                row["config"] if i == 0 else "",
                str(end["frame"]),
                f"{empty['j']:.3f} / {empty['f']:.3f}",
                f"{mirrored['j']:.3f} / {mirrored['f']:.3f}",
                f"{row['run_jf_change']:+.4f}" if i == 0 else "",
            )
    CONSOLE.print(table)
    if args.json_path is not None:
        args.json_path.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main(tyro.cli(Args))
