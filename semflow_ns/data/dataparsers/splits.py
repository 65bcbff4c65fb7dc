"""Which frames a split holds, and which training frames keep their labels (label subsets).

Shared by every DataParser of the plugin (``semflow-data``, ``dynnerf-data``), so that the paper's
semantic-completion and tracking settings (labels on a subset of the video, evaluation on the other
frames) work the same way for every input format.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from semflow_ns.data.dataparsers.frame_selection import FrameSelectionError, parse_frame_set
from semflow_ns.data.format import UNLABELLED_ID, FrameRecord, SceneDescription, SceneFormatError, read_label_image

EvalSource = Literal["auto", "held-out", "video", "unlabelled", "withheld"]
"""Where the val/test images come from (see :class:`SplitOptions`)."""


@dataclass(frozen=True)
class SplitOptions:
    """The split options common to the DataParsers.

    Attributes:
        label_frames: frame set (syntax of :mod:`semflow_ns.data.dataparsers.frame_selection`) of the video frames whose
            labels are used for training; the other frames keep RGB and flow but no labels.
        eval_source: ``held-out``: the scene's held-out views; ``video``: video frames (``eval_frames``, else
            every ``eval_interval``-th); ``unlabelled``: the video frames outside ``label_frames`` that have
            ground-truth labels; ``withheld``: the frames of ``withheld_frames``; ``auto``: ``withheld`` when
            frames are withheld, else held-out views when the scene has them, else ``video``.
        eval_interval: step between evaluated video frames for ``video`` when ``eval_frames`` is empty.
        eval_frames: frame set of the evaluated video frames for ``video`` (empty: use ``eval_interval``).
        eval_view_set: for ``held-out``, only the views whose ``view_set`` is this name (empty: every view).
        withheld_frames: frame set of video frames left out of training (empty: none): no ray of theirs is
            trained on and the optical flow of their neighbours into them is dropped; they stay in the video
            (its timeline and the frame encoder's input), for measuring new views of the video's camera path.
    """

    label_frames: str = "all"
    eval_source: EvalSource = "auto"
    eval_interval: int = 8
    eval_frames: str = ""
    eval_view_set: str = ""
    withheld_frames: str = ""


def labelled_indices(scene: SceneDescription, options: SplitOptions) -> list[int]:
    """Indices of the video frames whose labels are used for training (validated against the video length)."""
    return parse_frame_set(options.label_frames, len(scene.frames), "--label-frames")


def without_labels(frame: FrameRecord, masks_from_labels: bool) -> FrameRecord:
    """A copy of ``frame`` with its labels withheld: no semantics, no instances, and no motion mask when the
    scene's motion masks were derived from the labels (then the frame's motion is unknown)."""
    motion = None if masks_from_labels else frame.motion_mask
    return dataclasses.replace(frame, semantics=None, instances=None, motion_mask=motion)


def withheld_indices(scene: SceneDescription, options: SplitOptions) -> list[int]:
    """Indices of the video frames left out of training (``options.withheld_frames``; none when empty)."""
    if not options.withheld_frames.strip():
        return []
    withheld = parse_frame_set(options.withheld_frames, len(scene.frames), "--withheld-frames")
    if len(withheld) == len(scene.frames):
        raise FrameSelectionError(f"--withheld-frames {options.withheld_frames!r} leaves no frame to train on")
    return withheld


def _without_flow_into(frames: list[FrameRecord], withheld: list[int]) -> list[FrameRecord]:
    """Frames whose optical flow toward a withheld frame is dropped (it was estimated from that frame's image)."""
    out = list(frames)
    for i in withheld:
        out[i] = without_labels(out[i], masks_from_labels=False)
        if i > 0:
            out[i - 1] = dataclasses.replace(out[i - 1], flow_fwd=None)
        if i + 1 < len(out):
            out[i + 1] = dataclasses.replace(out[i + 1], flow_bwd=None)
    return out


def training_frames(scene: SceneDescription, options: SplitOptions) -> list[FrameRecord]:
    """The whole video, with labels withheld from the frames outside ``options.label_frames`` (and, for frames
    left out of training with ``withheld_frames``, labels and the flow of their neighbours into them dropped).

    Raises:
        SceneFormatError: ``label_frames`` names frames, but none of them has labels (the task would train
            without any).
    """
    chosen = labelled_indices(scene, options)
    keep = set(chosen)
    if (
        chosen
        and any(f.semantics is not None for f in scene.frames)
        and all(scene.frames[i].semantics is None for i in chosen)
    ):
        names = ", ".join(f"{i} ({scene.frames[i].image.name})" for i in chosen[:3]) + (
            ", ..." if len(chosen) > 3 else ""
        )
        raise SceneFormatError(
            f"{scene.root / 'transforms.json'}: frames: --label-frames {options.label_frames!r} keeps frame(s) "
            f"{names}, none of which has labels (semantics_path): the task leaves no labelled frame to train on"
        )
    frames = [
        frame if i in keep else without_labels(frame, scene.motion_masks_from_labels)
        for i, frame in enumerate(scene.frames)
    ]
    return _without_flow_into(frames, withheld_indices(scene, options))


def _video_eval_frames(scene: SceneDescription, options: SplitOptions) -> list[FrameRecord]:
    if options.eval_frames.strip():
        indices = parse_frame_set(options.eval_frames, len(scene.frames), "--eval-frames")
        return [scene.frames[i] for i in indices]
    if options.eval_interval < 1:
        raise FrameSelectionError(f"--eval-interval must be at least 1, got {options.eval_interval}")
    return scene.frames[:: options.eval_interval]


def _unlabelled_eval_frames(scene: SceneDescription, options: SplitOptions) -> list[FrameRecord]:
    labelled = set(labelled_indices(scene, options))
    outside = [i for i in range(len(scene.frames)) if i not in labelled]
    frames = [scene.frames[i] for i in outside if scene.frames[i].semantics is not None]
    if not outside:
        raise FrameSelectionError(
            f"--eval-source unlabelled: --label-frames {options.label_frames!r} keeps the labels of every frame, "
            "so no frame is left to evaluate; choose a label subset such as 'first:50%'"
        )
    if not frames:
        raise SceneFormatError(
            f"{scene.root / 'transforms.json'}: frames: --eval-source unlabelled: none of the {len(outside)} frames "
            "outside --label-frames has a ground-truth label (semantics_path) to score against"
        )
    _check_objects_were_labelled(scene, [scene.frames[i] for i in sorted(labelled)], frames, options)
    return frames


def _objects(frame: FrameRecord, scene: SceneDescription) -> set[int]:
    """The objects a frame's ground truth shows: its instance ids, else its moving classes."""
    if frame.instances is not None and scene.instances:
        return {int(i) for i in np.unique(read_label_image(frame.instances)) if 0 < i < UNLABELLED_ID}
    moving = {i for i, c in enumerate(scene.classes) if c.dynamic}
    return {int(i) for i in np.unique(read_label_image(frame.semantics)) if i in moving} if frame.semantics else set()


def _check_objects_were_labelled(
    scene: SceneDescription, labelled: list[FrameRecord], scored: list[FrameRecord], options: SplitOptions
) -> None:
    """A label-subset task scores the objects of its training labels: an object that no labelled frame shows
    cannot be tracked, so it stops the run before training, naming the first frame that shows it."""
    known = set().union(*(_objects(f, scene) for f in labelled if f.semantics is not None))
    for frame in scored:
        new = _objects(frame, scene) - known
        if new:
            kind = "instance" if frame.instances is not None and scene.instances else "moving class"
            raise SceneFormatError(
                f"{frame.semantics}: {kind} id(s) {sorted(new)} appear here but in none of the frames that "
                f"--label-frames {options.label_frames!r} keeps labelled, so the task cannot score them; label a "
                "frame that shows them, or choose another --label-frames"
            )


def _held_out_views(scene: SceneDescription, view_set: str) -> list[FrameRecord]:
    if not view_set:
        return scene.eval_frames
    views = [f for f in scene.eval_frames if f.view_set == view_set]
    if not views:
        sets = sorted({f.view_set for f in scene.eval_frames if f.view_set})
        raise SceneFormatError(
            f"{scene.root / 'transforms.json'}: eval_frames: no held-out view has view_set {view_set!r} "
            f"(the scene's view sets: {', '.join(sets) if sets else 'none'})"
        )
    return views


def eval_frames(scene: SceneDescription, options: SplitOptions) -> list[FrameRecord]:
    """The images of the val/test split, with their ground-truth labels (never withheld).

    Raises:
        SceneFormatError: ``held-out`` without held-out views, or ``unlabelled`` without ground truth.
        FrameSelectionError: a frame set that does not parse or selects nothing to evaluate.
    """
    source = options.eval_source
    if source == "auto":
        source = "withheld" if options.withheld_frames.strip() else ("held-out" if scene.eval_frames else "video")
    if source == "withheld":
        withheld = withheld_indices(scene, options)
        if not withheld:
            raise FrameSelectionError("--eval-source withheld needs --withheld-frames (e.g. every:8+4)")
        return [scene.frames[i] for i in withheld]
    if source == "held-out":
        if not scene.eval_frames:
            raise SceneFormatError(
                f"{scene.root / 'transforms.json'}: eval_frames: eval-source 'held-out' needs held-out views"
            )
        return _held_out_views(scene, options.eval_view_set)
    if source == "unlabelled":
        return _unlabelled_eval_frames(scene, options)
    frames = _video_eval_frames(scene, options)
    if not frames:
        raise FrameSelectionError(f"--eval-frames {options.eval_frames!r} selects no frame to evaluate")
    return frames


def describe_labels(frames: Sequence[FrameRecord], options: SplitOptions) -> str:
    """One line for the console: how many training frames keep labels under ``options.label_frames``."""
    labelled = sum(f.semantics is not None for f in frames)
    return f"labels on {labelled}/{len(frames)} frames (--label-frames {options.label_frames!r})"
