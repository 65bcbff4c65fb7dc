"""Frame sets written as short strings: which video frames carry training labels, or are evaluated.

Syntax (frame indices are 0-based positions in the video, after any subsampling):

* ``all`` - every frame; ``none`` - no frame;
* ``0,1,2,9`` - a list; ``0-5`` - an inclusive range; both combine: ``0-2,9-11``;
* ``every:3`` - every 3rd frame starting at 0 (0, 3, 6, ...); ``every:3+1`` starts at frame 1;
* ``first:50%`` - the first p % of the frames (rounded to the nearest count, at least one frame);
  ``first:6`` - the first 6 frames.

The paper's settings on a 12-frame video: semantic completion "50 %" = ``0,1,2,9,10,11``; dynamic-scene
tracking 25 / 50 / 75 % = ``first:25%`` / ``first:50%`` / ``first:75%`` (frames 0-2 / 0-5 / 0-8).
"""

from __future__ import annotations

import re

SYNTAX = "all | none | 0,1,2,9 | 0-5 | every:K[+OFFSET] | first:P% | first:N"
"""One-line summary of the syntax, used in error messages and option help."""


class FrameSelectionError(ValueError):
    """A frame-set string does not parse or names frames the video does not have."""


def _fail(option: str, spec: str, message: str) -> FrameSelectionError:
    return FrameSelectionError(f"{option} {spec!r}: {message} (syntax: {SYNTAX})")


def _integer(option: str, spec: str, text: str, what: str) -> int:
    if not re.fullmatch(r"\s*\d+\s*", text):
        raise _fail(option, spec, f"{what} {text.strip()!r} is not a non-negative integer")
    return int(text)


def _first(option: str, spec: str, body: str, num_frames: int) -> list[int]:
    body = body.strip()
    if body.endswith("%"):
        try:
            percent = float(body[:-1])
        except ValueError:
            raise _fail(option, spec, f"{body!r} is not a percentage") from None
        if not 0.0 < percent <= 100.0:
            raise _fail(option, spec, f"the percentage must lie in (0, 100], got {percent:g}")
        count = max(1, round(percent / 100.0 * num_frames))
    else:
        count = _integer(option, spec, body, "the frame count")
        if not 1 <= count <= num_frames:
            raise _fail(option, spec, f"asks for {count} frames but the video has {num_frames}")
    return list(range(count))


def _every(option: str, spec: str, body: str, num_frames: int) -> list[int]:
    step_text, _, offset_text = body.partition("+")
    step = _integer(option, spec, step_text, "the step")
    offset = _integer(option, spec, offset_text, "the offset") if offset_text else 0
    if step < 1:
        raise _fail(option, spec, "the step must be at least 1")
    if offset >= num_frames:
        raise _fail(option, spec, f"offset {offset} is past the last frame ({num_frames - 1})")
    return list(range(offset, num_frames, step))


def _listed(option: str, spec: str, num_frames: int) -> list[int]:
    chosen: set[int] = set()
    for part in spec.split(","):
        if not part.strip():
            raise _fail(option, spec, "empty item in the list")
        low_text, dash, high_text = part.partition("-")
        low = _integer(option, spec, low_text, "frame")
        high = _integer(option, spec, high_text, "frame") if dash else low
        if high < low:
            raise _fail(option, spec, f"range {part.strip()!r} ends before it starts")
        if high >= num_frames:
            raise _fail(
                option, spec, f"frame {high} is out of range: the video has {num_frames} frames (0-{num_frames - 1})"
            )
        chosen.update(range(low, high + 1))
    return sorted(chosen)


def parse_frame_set(spec: str, num_frames: int, option: str = "--label-frames") -> list[int]:
    """Parses a frame-set string (see the module docstring) for a video of ``num_frames`` frames.

    Args:
        spec: the string, e.g. ``"all"``, ``"0-5"``, ``"every:3"`` or ``"first:50%"``.
        num_frames: frames of the video; every index must lie in [0, num_frames).
        option: name of the option the string came from, quoted in error messages.

    Returns:
        Sorted, distinct 0-based frame indices.

    Raises:
        FrameSelectionError: naming the option, the string and what is wrong with it.
    """
    if num_frames < 1:
        raise _fail(option, spec, "the video has no frames")
    text = spec.strip().lower()
    if text == "all":
        return list(range(num_frames))
    if text == "none":
        return []
    kind, colon, body = text.partition(":")
    if colon and kind.strip() == "first":
        return _first(option, spec, body, num_frames)
    if colon and kind.strip() == "every":
        return _every(option, spec, body, num_frames)
    if colon or not text:
        raise _fail(option, spec, "unknown form")
    return _listed(option, text, num_frames)
