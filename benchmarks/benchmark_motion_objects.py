"""How well the moving objects that ``semflow-process-data`` finds without labels match the ground truth, per clip.

For each clip (layouts as in ``process_sweep.py``: a clip folder with ``images/`` and ``masks/``, a folder of
them, or a DAVIS root) the frames are read as ``semflow-process-data --max-size`` reads them, DIS flow and the
flow motion masks are estimated the same way, and the motion masks are grouped into objects
(``semflow_ns.process.objects``). The ground-truth masks are used only to score, with the region similarity J
(intersection over union, averaged over the frames; 1 on a frame where both are empty):

- ``J union``: all the objects found on a frame together against the ground-truth object;
- ``J best``: the one found object (the same on every frame) with the highest mean J, as in DAVIS'
  unsupervised protocol where each ground-truth object is matched to one proposed track;
- ``J moving``: the motion masks' moving pixels against the ground truth (what the objects start from);
- ``objects``: how many objects were found; ``frames best``: on how many frames the best object is present.

    python benchmarks/benchmark_motion_objects.py ../shared/data/davis-car-shadow ../shared/data/davis-sweep \\
        --output benchmarks/results_motion_objects_cpu.json
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import tyro
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark_motion_masks import ground_truth  # noqa: E402
from process_sweep import find_clips  # noqa: E402

from semflow_ns.data.producers.optical_flow import estimate_video_flow  # noqa: E402
from semflow_ns.process.frames import read_folder  # noqa: E402
from semflow_ns.process.motion import motion_mask  # noqa: E402
from semflow_ns.process.objects import find_objects  # noqa: E402

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
    output: Path = Path("outputs/benchmark_motion_objects/results.json")
    """Where the rows go as JSON."""


@dataclass
class Row:
    clip: str
    frames: int
    objects: int
    j_union: float
    j_best: float
    best_frames: int
    j_moving: float
    seconds_objects: float
    """Time of the grouping alone (colour step and tracking), without flow and motion masks."""


def jaccard(found: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two bool masks (1 when both are empty)."""
    union = int((found | truth).sum())
    return 1.0 if union == 0 else float((found & truth).sum()) / union


def score_clip(name: str, images: Path, masks: Path, max_size: int) -> Row:
    """Objects found on every frame of one clip against its ground truth (any non-zero mask value is the object)."""
    frames, paths = read_folder(images, 1, 0, max_size)
    truth = ground_truth(masks, paths, [(f.rgb.shape[1], f.rgb.shape[0]) for f in frames])
    flows = estimate_video_flow([f.rgb for f in frames], "medium", False, None)
    levels = [motion_mask(flows, i) for i in range(len(frames))]
    start = time.perf_counter()
    ids = find_objects([f.rgb for f in frames], levels, flows)
    seconds = time.perf_counter() - start
    count = max(int(i.max()) for i in ids)
    per_object = [[jaccard(i == k, t) for i, t in zip(ids, truth, strict=True)] for k in range(1, count + 1)]
    best = int(np.argmax([np.mean(j) for j in per_object])) + 1 if count else 0
    return Row(
        clip=name,
        frames=len(frames),
        objects=count,
        j_union=float(np.mean([jaccard(i > 0, t) for i, t in zip(ids, truth, strict=True)])),
        j_best=float(np.mean(per_object[best - 1])) if count else 0.0,
        best_frames=sum(int((i == best).any()) for i in ids) if count else 0,
        j_moving=float(np.mean([jaccard(m == 255, t) for m, t in zip(levels, truth, strict=True)])),
        seconds_objects=seconds,
    )


def main(args: Args) -> None:
    rows = []
    for clip in find_clips(list(args.clips), list(args.names)):
        if clip.masks is None:
            CONSOLE.print(f"[yellow]{clip.name}: no masks/ folder, skipped")
            continue
        rows.append(score_clip(clip.name, clip.images, clip.masks, args.max_size))
        CONSOLE.print(rows[-1])
    table = Table(title="Moving objects found without labels against the ground-truth object (region similarity J)")
    for column in ("clip", "frames", "objects", "J union", "J best", "frames best", "J moving", "s"):
        table.add_column(column, justify="left" if column == "clip" else "right")
    for r in rows:
        table.add_row(
            r.clip, str(r.frames), str(r.objects), f"{r.j_union:.3f}", f"{r.j_best:.3f}", str(r.best_frames),
            f"{r.j_moving:.3f}", f"{r.seconds_objects:.0f}",
        )  # fmt: skip
    CONSOLE.print(table)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps([asdict(r) for r in rows], indent=1))
    CONSOLE.print(f"rows written to {args.output}")


if __name__ == "__main__":
    main(tyro.cli(Args))
