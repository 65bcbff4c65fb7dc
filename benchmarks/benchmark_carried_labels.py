"""How right are the labels carried along the optical flow, by how far they travelled?

With labels on some frames only, the training set gives every unlabelled frame the labels of its nearest
labelled frame carried along the stored optical flow (``semflow_ns.data.datasets.flow_labels``), and the model
weights each by 2^(-hops / half-life) (``--pipeline.model.flow-label-half-life``), each hop whose flow failed the
forward-backward check counting ``--pipeline.model.flow-label-unchecked-hops`` more. This benchmark builds those
guesses exactly as training does, for each scene and task preset, and scores them against the withheld ground
truth (used only to score), grouped by the frames' distance to the nearest labelled frame (in a tracking task,
the hops of every guess of the frame):

- ``checked``: share of the pixels of those frames whose guess passed the check at every hop;
- ``accuracy``: share of the checked guesses whose class is right;
- ``fg J``: intersection over union of the foreground (any class but 0) on the checked pixels: the part that
  matters for tracking, since most pixels are background;
- ``frame fg J, checked`` and ``frame fg J, all``: foreground J over the whole frame of the checked guesses
  only, and of every guess, checked or not (pixels without a guess count as background); the second is what 2D
  propagation alone would predict;
- ``weight``: the loss weight a checked guess at the range's mean distance gets with ``--half-life``.

    python benchmarks/benchmark_carried_labels.py                          # the demo
    python benchmarks/benchmark_carried_labels.py --no-demo --data data/car-shadow data/dog
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import tyro
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark_tasks import label_frames  # noqa: E402

from semflow_ns.data.dataparsers.frame_selection import parse_frame_set  # noqa: E402
from semflow_ns.data.datasets.flow_labels import NO_LABEL, flow_labels, read_ids  # noqa: E402
from semflow_ns.data.format.reader import load_scene  # noqa: E402

CONSOLE = Console()
BINS = ((1, 1), (2, 3), (4, 6), (7, 10), (11, 20), (21, 10_000))
"""Ranges (inclusive) of frames from the nearest labelled frame, one row each."""


@dataclasses.dataclass
class Args:
    """Benchmark options."""

    data: tuple[Path, ...] = ()
    """Processed scenes (``semflow-process-data`` output)."""
    demo: bool = True
    """Also the demo scene (generated into the cache on first use)."""
    tasks: tuple[str, ...] = ("tracking-first", "tracking-50")
    """Task presets in ``configs/`` that label some frames only."""
    half_life: float = 3.0
    """Half-life (hops) for the ``weight`` column."""
    output: Path = Path("outputs/benchmark_carried_labels/results.json")
    """Where the rows go as JSON."""


def score_scene(scene: Path, task: str) -> list[dict]:
    """Rows (one per range of distances with frames) for one scene and a task that labels some frames."""
    frames = list(load_scene(scene).frames)
    spec = label_frames(task)
    assert spec is not None, f"task {task!r} labels every frame"
    labelled = set(parse_frame_set(spec, len(frames)))
    held = [
        f if i in labelled else dataclasses.replace(f, semantics=None, instances=None) for i, f in enumerate(frames)
    ]
    counts = np.zeros((len(BINS), 10), dtype=np.int64)  # checked, correct, fg inter, fg union, pixels, hops sum,
    # over the whole frame fg inter and union of the checked guesses and of every guess
    for index, guess in enumerate(flow_labels(held)):
        if guess is None or index in labelled or frames[index].semantics is None:
            continue
        truth = read_ids(frames[index].semantics, guess.classes.shape)
        guessed = (guess.classes != NO_LABEL) & (guess.unchecked == 0)
        distance = min(abs(index - i) for i in labelled)  # the hops of every guess in a tracking task
        row = next(r for r, (low, high) in enumerate(BINS) if low <= distance <= high)
        predicted, actual = (guess.classes > 0) & guessed, (truth > 0) & guessed
        counts[row] += (
            guessed.sum(),
            (guess.classes[guessed] == truth[guessed]).sum(),
            (predicted & actual).sum(),
            (predicted | actual).sum(),
            truth.size,
            distance * truth.size,
            (predicted & (truth > 0)).sum(),
            (predicted | (truth > 0)).sum(),
            ((guess.classes > 0) & (truth > 0)).sum(),
            ((guess.classes > 0) | (truth > 0)).sum(),
        )
    rows = []
    for (low, high), (
        guessed,
        correct,
        inter,
        union,
        pixels,
        hops,
        inter_frame,
        union_frame,
        inter_all,
        union_all,
    ) in zip(BINS, counts, strict=True):
        if pixels:
            rows.append(
                {
                    "scene": scene.name,
                    "task": task,
                    "frames_from_labels": f"{low}"
                    if low == high
                    else (f"{low}-{high}" if high < 10_000 else f"{low}+"),
                    "mean_distance": float(hops / pixels),
                    "checked": float(guessed / pixels),
                    "accuracy": float(correct / guessed) if guessed else None,
                    "fg_j": float(inter / union) if union else None,
                    "frame_fg_j_checked": float(inter_frame / union_frame) if union_frame else None,
                    "frame_fg_j_all": float(inter_all / union_all) if union_all else None,
                }
            )
    return rows


def main(args: Args) -> None:
    for task in args.tasks:
        if label_frames(task) is None:
            raise SystemExit(f"task {task!r} labels every frame: no labels are carried")
    scenes = list(args.data)
    if args.demo:
        from semflow_ns.data.demo.cache import default_demo_dir, ensure_demo_scene

        scenes.insert(0, ensure_demo_scene(default_demo_dir(), progress=False))
    rows = []
    for scene in scenes:
        for task in args.tasks:
            rows += score_scene(Path(scene), task)
    table = Table(title=f"labels carried along the optical flow (weight: half-life {args.half_life:g} hops)")
    columns = ("scene", "task", "frames from labels", "checked", "accuracy", "fg J")
    for column in (*columns, "frame fg J, checked", "frame fg J, all", "weight"):
        table.add_column(column)
    for r in rows:
        accuracy = "–" if r["accuracy"] is None else f"{r['accuracy']:.3f}"
        fg_j = "–" if r["fg_j"] is None else f"{r['fg_j']:.3f}"
        weight = 2.0 ** (-r["mean_distance"] / args.half_life)
        table.add_row(
            r["scene"],
            r["task"],
            r["frames_from_labels"],
            f"{r['checked']:.2f}",
            accuracy,
            fg_j,
            *("–" if r[key] is None else f"{r[key]:.3f}" for key in ("frame_fg_j_checked", "frame_fg_j_all")),
            f"{weight:.2f}",
        )
    CONSOLE.print(table)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"half_life": args.half_life, "rows": rows}, indent=1))
    CONSOLE.print(f"rows written to {args.output}")


if __name__ == "__main__":
    main(tyro.cli(Args))
