"""How well the flow-estimated motion masks of ``semflow-process-data`` find the moving object, per clip.

For each clip (layouts as in ``process_sweep.py``: a clip folder with ``images/`` and ``masks/``, a folder of
them, or a DAVIS root) the frames are read as ``semflow-process-data --max-size`` reads them, DIS flow is
estimated the same way, and every frame's mask (``semflow_ns.process.motion``) is compared with the clip's
ground-truth foreground mask:

- ``object static``: share of the object's pixels marked static (the harmful error: the static part of the
  model is then asked to explain the object);
- ``object moving``: share of the object's pixels marked moving (recall);
- ``moving on object``: share of the moving pixels that are on the object (precision; shadows, water and
  near background moving with parallax lower it);
- ``static`` / ``moving``: share of all pixels marked static / moving (the rest is unknown).

    python benchmarks/benchmark_motion_masks.py ../shared/data/davis-car-shadow ../shared/data/davis-sweep
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import tyro
from PIL import Image
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from process_sweep import find_clips  # noqa: E402

from semflow_ns.data.producers.files import list_images, pair_files  # noqa: E402
from semflow_ns.data.producers.optical_flow import estimate_video_flow  # noqa: E402
from semflow_ns.process.frames import read_folder  # noqa: E402
from semflow_ns.process.motion import motion_mask  # noqa: E402

CONSOLE = Console()


@dataclass
class Args:
    """Benchmark options."""

    clips: tyro.conf.Positional[tuple[Path, ...]]
    """Clip folders, folders of clips, or DAVIS roots."""
    names: tuple[str, ...] = ()
    """Only these clips (by folder name)."""
    max_size: int = 480
    """Longer image side, as ``semflow-process-data --max-size``."""
    output: Path = Path("outputs/benchmark_motion_masks/results.json")
    """Where the rows go as JSON."""


@dataclass
class Row:
    clip: str
    frames: int
    object_static: float
    object_moving: float
    moving_on_object: float
    static: float
    moving: float
    seconds: float


def ground_truth(masks: Path, paths: list[Path], sizes: list[tuple[int, int]]) -> list[np.ndarray]:
    """The clip's object masks (any non-zero value), paired with the frame files and resized to ``sizes`` (w, h)."""
    out = []
    for truth_file, size in zip(pair_files(paths, list_images(masks), f"masks in {masks}"), sizes, strict=True):
        assert truth_file is not None
        with Image.open(truth_file) as image:
            out.append(np.asarray(image.convert("L").resize(size, Image.Resampling.NEAREST)) > 0)
    return out


def score_clip(name: str, images: Path, masks: Path, max_size: int) -> Row:
    """Masks of every frame of one clip against its ground truth (any non-zero mask value is the object)."""
    start = time.perf_counter()
    frames, paths = read_folder(images, 1, 0, max_size)
    truths = ground_truth(masks, paths, [(f.rgb.shape[1], f.rgb.shape[0]) for f in frames])
    flows = estimate_video_flow([f.rgb for f in frames], "medium", False, None)
    scores = []
    for index, truth in enumerate(truths):
        mask = motion_mask(flows, index)
        moving, static = mask == 255, mask == 0
        on_object = max(int(truth.sum()), 1)
        scores.append((
            (static & truth).sum() / on_object, (moving & truth).sum() / on_object,
            (moving & truth).sum() / max(int(moving.sum()), 1), static.mean(), moving.mean(),
        ))  # fmt: skip
    means = np.mean(scores, axis=0).tolist()
    return Row(name, len(frames), *means, seconds=time.perf_counter() - start)


def main(args: Args) -> None:
    rows = []
    for clip in find_clips(list(args.clips), list(args.names)):
        if clip.masks is None:
            CONSOLE.print(f"[yellow]{clip.name}: no masks/ folder, skipped")
            continue
        rows.append(score_clip(clip.name, clip.images, clip.masks, args.max_size))
    table = Table(title="Flow-estimated motion masks against the ground-truth object")
    for column in ("clip", "frames", "object static", "object moving", "moving on object", "static", "moving", "s"):
        table.add_column(column, justify="left" if column == "clip" else "right")
    for r in rows:
        values = (r.object_static, r.object_moving, r.moving_on_object, r.static, r.moving)
        table.add_row(r.clip, str(r.frames), *(f"{v:.3f}" for v in values), f"{r.seconds:.0f}")
    CONSOLE.print(table)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps([asdict(r) for r in rows], indent=1))
    CONSOLE.print(f"rows written to {args.output}")


if __name__ == "__main__":
    main(tyro.cli(Args))
