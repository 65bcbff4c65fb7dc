"""The report of semflow-process-data is assembled from what the steps return."""

import dataclasses
from pathlib import Path

from semflow_ns.process.frames import pick_step
from semflow_ns.process.options import PoseStats, ProcessOptions, ProcessReport


def test_pose_statistics_enter_the_flat_report() -> None:
    report = ProcessReport(output=Path("scene"), input_frames=9, frames=8)
    assert isinstance(report, PoseStats) and report.pose_step is None and report.registered is None
    stats = PoseStats(pose_step="sfm-relaxed", registered=7, trimmed=1, interpolated=["00004"])
    report = dataclasses.replace(report, **{f.name: getattr(stats, f.name) for f in dataclasses.fields(stats)})
    assert (report.pose_step, report.registered, report.trimmed, report.interpolated) == (
        "sfm-relaxed",
        7,
        1,
        ["00004"],
    )
    assert report.frames == 8 and report.input_frames == 9
    record = dataclasses.asdict(report)  # what transforms.json's "processing" holds: one flat record
    assert record["pose_step"] == "sfm-relaxed" and record["output"] == Path("scene") and "poses" not in record


def test_defaults_fit_the_training_budget() -> None:
    """480 px and at most 100 frames, spread over the whole input by an automatic frame step."""
    options = ProcessOptions(output=Path("scene"))
    assert (options.max_size, options.frame_step, options.max_frames) == (480, 0, 100)
    assert options.frame_times == "timestamps"
    assert [pick_step(count, 0, 100) for count in (6, 100, 101, 300, 301)] == [1, 1, 2, 3, 4]
    assert pick_step(300, 2, 100) == 2 and pick_step(300, 0, 0) == 1  # a given step; no limit
