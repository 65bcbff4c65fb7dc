"""``semflow-process-data``: a video or a folder of frames (plus optional masks or labels) to a semflow scene.

Stages: :mod:`~semflow_ns.process.frames` (decode, subsample, resize), :mod:`~semflow_ns.process.label_input`
(pair and decode the labels into classes, instances and motion masks), :mod:`~semflow_ns.process.sfm`
(pycolmap structure from motion), with :mod:`~semflow_ns.process.pose_chain` (fallbacks when SfM registers too
few frames, down to :mod:`~semflow_ns.process.rotation_only` poses), or :mod:`~semflow_ns.process.poses_input`
(poses supplied by the user),
then optical flow and writing (:mod:`~semflow_ns.process.writing`). :mod:`~semflow_ns.process.run` runs the steps
in order and assembles the report; :mod:`~semflow_ns.process.options` holds the options and the report.
"""


class ProcessError(ValueError):
    """A processing step cannot go on; the message says what failed and what to try."""
