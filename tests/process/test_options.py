"""The report of semflow-process-data is assembled from what the steps return."""

import dataclasses
from pathlib import Path

from semflow_ns.process.options import PoseStats, ProcessReport


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
