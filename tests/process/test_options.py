"""The report of semflow-process-data is assembled from what the steps return."""

import dataclasses
from pathlib import Path

from semflow_ns.process.options import PoseStats, ProcessReport


def test_pose_statistics_are_report_fields_in_the_same_order() -> None:
    report_fields = [f.name for f in dataclasses.fields(ProcessReport)]
    pose_fields = [f.name for f in dataclasses.fields(PoseStats)]
    start = report_fields.index(pose_fields[0])
    assert report_fields[start : start + len(pose_fields)] == pose_fields
    defaults = ProcessReport(output=Path("scene"), input_frames=0, frames=0)
    assert all(getattr(defaults, name) == getattr(PoseStats(), name) for name in pose_fields)
