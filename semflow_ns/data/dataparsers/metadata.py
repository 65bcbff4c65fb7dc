"""What the model learns about the data through ``metadata``: the training video and the label vocabulary.

The DataParsers (:func:`~semflow_ns.data.dataparsers.semflow_dataparser.scene_outputs`) set it; the dataset and the
model read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch
from nerfstudio.cameras.cameras import Cameras

from semflow_ns.data.format import InstanceInfo, SemanticClass

VIDEO_FRAME_KEY = "video_frame"
"""Camera metadata key set by the DataParsers: index [num_cameras, 1] of the video frame each camera is,
-1 for cameras that are not video frames (held-out views). Rays generated from the cameras carry it too."""


@dataclass
class VideoFrames:
    """The monocular training video: the frames whose features the model samples and projects into.

    The same object is attached to every split, so that a model rendering held-out views (or any
    viewer camera) can still look up the video frames nearest in time.
    """

    image_filenames: list[Path]
    cameras: Cameras
    """One camera per frame, with ``times`` [num_frames, 1] in [0, 1], increasing."""
    labelled: Optional[list[bool]] = None
    """Whether training uses each frame's labels (None: not known)."""
    withheld: list[int] = field(default_factory=list)
    """Frames left out of training (``--withheld-frames``): no ray of theirs is trained on."""

    def __len__(self) -> int:
        return len(self.image_filenames)

    def label_distance(self) -> torch.Tensor:
        """Frames from each frame to the nearest frame with training labels ([num_frames] int64; 0 for every
        frame when that is not known or no frame has labels)."""
        if self.labelled is None or not any(self.labelled):
            return torch.zeros(len(self), dtype=torch.long)
        frames = torch.arange(len(self))
        labelled = frames[torch.tensor(self.labelled, dtype=torch.bool)]
        return (frames[:, None] - labelled[None, :]).abs().min(dim=1).values

    @property
    def times(self) -> torch.Tensor:
        assert self.cameras.times is not None
        return self.cameras.times[:, 0]


@dataclass
class SceneInfo:
    """Scene-level facts the model needs: classes (with which ones move), instances, sampling range."""

    classes: list[SemanticClass]
    instances: list[InstanceInfo] = field(default_factory=list)
    near: Optional[float] = None
    far: Optional[float] = None
    has_labels: bool = True
    unbounded: bool = False
    """True for real scenes whose content extends beyond the scene box (contract outside it, sample in disparity)."""
    approximate_poses: bool = False
    """True when the cameras are approximate estimates (the model refines them by default)."""
    has_depth: bool = False
    """True when training frames have depth to supervise (SfM points ``sparse_depth_path`` or maps ``depth_path``)."""

    @property
    def dynamic_class_ids(self) -> list[int]:
        return [i for i, c in enumerate(self.classes) if c.dynamic]

    def near_far(self, default: tuple[float, float]) -> tuple[float, float]:
        """Sampling range along rays: the scene's own near/far where given, else ``default``."""
        return (default[0] if self.near is None else self.near, default[1] if self.far is None else self.far)
