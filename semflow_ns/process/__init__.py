"""``semflow-process-data``: a video or a folder of frames (plus optional masks or labels) to a semflow scene.

Stages: :mod:`~semflow_ns.process.frames` (decode, subsample, resize), :mod:`~semflow_ns.process.label_input`
(pair and decode the labels into classes, instances and motion masks), optical flow and flow motion masks
(:mod:`~semflow_ns.process.motion`), then the poses: :mod:`~semflow_ns.process.pose_chain` (SfM on flow tracks,
:mod:`~semflow_ns.process.flow_tracks` and :mod:`~semflow_ns.process.flow_sfm`; the SIFT steps of
:mod:`~semflow_ns.process.sift_steps` on :mod:`~semflow_ns.process.sfm`; the parallax guard of
:mod:`~semflow_ns.process.parallax`; :mod:`~semflow_ns.process.rotation_only` poses), or
:mod:`~semflow_ns.process.poses_input` (poses supplied by the user), then writing
(:mod:`~semflow_ns.process.writing`, :mod:`~semflow_ns.process.sparse_depth`). :mod:`~semflow_ns.process.run` runs the steps
in order and assembles the report; :mod:`~semflow_ns.process.options` holds the options and the report.
"""


class ProcessError(ValueError):
    """A processing step cannot go on; the message says what failed and what to try."""
