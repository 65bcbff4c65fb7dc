"""Tests of the frame-set syntax of --label-frames / --eval-frames."""

import pytest

from semflow_ns.data.dataparsers.frame_selection import FrameSelectionError, parse_frame_set


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("all", list(range(12))),
        ("none", []),
        ("0,1,2,9,10,11", [0, 1, 2, 9, 10, 11]),  # the paper's 50 % completion split
        ("0-5", [0, 1, 2, 3, 4, 5]),
        ("0-2, 9-11", [0, 1, 2, 9, 10, 11]),
        ("5,1,1,3", [1, 3, 5]),
        ("every:3", [0, 3, 6, 9]),
        ("every:4+1", [1, 5, 9]),
        ("first:25%", [0, 1, 2]),  # the paper's tracking splits on 12 frames
        ("first:50%", [0, 1, 2, 3, 4, 5]),
        ("first:75%", list(range(9))),
        ("first:4", [0, 1, 2, 3]),
        ("first:1%", [0]),  # at least one frame
        (" ALL ", list(range(12))),
    ],
)
def test_forms(spec: str, expected: list[int]) -> None:
    assert parse_frame_set(spec, 12) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("0-12", r"frame 12 is out of range: the video has 12 frames \(0-11\)"),
        ("3-1", "ends before it starts"),
        ("1,,2", "empty item"),
        ("a,b", "'a' is not a non-negative integer"),
        ("-1", "'' is not a non-negative integer"),
        ("every:0", "step must be at least 1"),
        ("every:2+12", "offset 12 is past the last frame"),
        ("first:0%", r"percentage must lie in \(0, 100\]"),
        ("first:150%", r"percentage must lie in \(0, 100\]"),
        ("first:13", "asks for 13 frames but the video has 12"),
        ("first:x%", "is not a percentage"),
        ("last:3", "unknown form"),
        ("", "unknown form"),
    ],
)
def test_errors_name_the_option_and_the_problem(spec: str, message: str) -> None:
    with pytest.raises(FrameSelectionError, match=message) as info:
        parse_frame_set(spec, 12, "--label-frames")
    assert str(info.value).startswith(f"--label-frames {spec!r}:") and "syntax:" in str(info.value)
