"""DataParser for the semflow scene format (``semflow-data``).

Reads a scene folder written in the format of :mod:`semflow_ns.data.format` and hands nerfstudio
cameras with ``times``, the semantic class list as nerfstudio :class:`Semantics`, and, through
``metadata``, everything the model and the dataset need: the per-image file records (labels, optical
flow) and the training video (cameras, times, image files) that the model projects into.

Label subsets (``--label-frames``, the paper's completion and tracking settings) withhold the labels of
the other training frames; ``--eval-source unlabelled`` evaluates on exactly those frames (see
:mod:`semflow_ns.data.dataparsers.splits`). :func:`scene_outputs` is shared with the ``dynnerf-data`` DataParser.

With no ``--data`` it uses the built-in demo scene, generated on first use.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from nerfstudio.cameras.camera_utils import get_distortion_params
from nerfstudio.cameras.cameras import Cameras, CameraType
from nerfstudio.data.dataparsers.base_dataparser import DataParser, DataParserConfig, DataparserOutputs, Semantics
from nerfstudio.data.scene_box import SceneBox
from nerfstudio.utils.rich_utils import CONSOLE

from semflow_ns.data.dataparsers.metadata import VIDEO_FRAME_KEY, SceneInfo, VideoFrames
from semflow_ns.data.dataparsers.splits import (
    EvalSource,
    SplitOptions,
    describe_labels,
    eval_frames,
    training_frames,
    withheld_indices,
)
from semflow_ns.data.demo import default_demo_dir, ensure_demo_scene
from semflow_ns.data.format import FrameRecord, SceneDescription, load_scene


def frames_to_cameras(frames: Sequence[FrameRecord]) -> Cameras:
    """nerfstudio cameras (OpenGL camera-to-world, pinhole or OpenCV distortion) with per-frame times."""
    c2w = torch.from_numpy(np.stack([f.camera_to_world[:3, :4] for f in frames])).float()
    intr = [f.intrinsics for f in frames]

    def column(name: str) -> torch.Tensor:
        return torch.tensor([[float(getattr(i, name))] for i in intr], dtype=torch.float32)

    distortion = None
    if any(i.has_distortion for i in intr):
        distortion = torch.stack([get_distortion_params(k1=i.k1, k2=i.k2, p1=i.p1, p2=i.p2) for i in intr])
    return Cameras(
        camera_to_worlds=c2w,
        fx=column("fl_x"),
        fy=column("fl_y"),
        cx=column("cx"),
        cy=column("cy"),
        width=column("w").long(),
        height=column("h").long(),
        distortion_params=distortion,
        camera_type=CameraType.PERSPECTIVE,
        times=torch.tensor([[f.time] for f in frames], dtype=torch.float32),
    )


def scene_bounds(scene: SceneDescription, margin: float) -> np.ndarray:
    """The scene's box if it has one, else the cameras' bounding box grown by ``margin`` times its size."""
    if scene.scene_box is not None:
        return scene.scene_box
    centres = np.stack([f.camera_to_world[:3, 3] for f in scene.frames])
    lo, hi = centres.min(0), centres.max(0)
    size = max(float((hi - lo).max()), scene.far or 1.0)
    return np.stack([lo - margin * size, hi + margin * size])


@dataclass
class SemanticFlowDataParserConfig(DataParserConfig):
    """A dynamic scene in the semflow format (see the README, "Data format")."""

    _target: type = field(default_factory=lambda: SemanticFlowDataParser)
    data: Path = field(default_factory=default_demo_dir)
    """Scene folder holding a transforms.json. The default is the built-in demo scene
    ($SEMFLOW_DEMO_DIR or ~/.cache/semflow_ns/demo), generated there on first use."""
    label_frames: str = "all"
    """Video frames whose labels are used for training: all | none | 0,1,2,9 | 0-5 | every:K[+OFFSET] |
    first:P% | first:N (0-based). The other frames still give RGB and flow; their labels are withheld."""
    eval_source: EvalSource = "auto"
    """Which images the val/test split holds: the scene's held-out views (held-out), video frames (video:
    eval-frames, else every eval-interval-th), the frames outside label-frames with their ground-truth labels
    (unlabelled), or auto = held-out views when the scene has them, else video."""
    eval_interval: int = 8
    """Step between evaluated video frames for eval-source video (they are still trained on)."""
    eval_frames: str = ""
    """Evaluated video frames for eval-source video, in the label-frames syntax (empty: use eval-interval)."""
    eval_view_set: str = ""
    """With held-out views: evaluate only the views of this group (the demo: nearby | novel; empty: all)."""
    withheld_frames: str = ""
    """Video frames left out of training, in the label-frames syntax (e.g. every:8+4; empty: none): none of
    their rays is trained on and their neighbours' optical flow into them is dropped; the evaluation then
    scores them (eval-source auto or withheld). They stay in the video's timeline, and the frame encoder (the
    semantic branch's input) still sees their images."""
    box_margin: float = 1.0
    """Without a scene_box in transforms.json, the cameras' bounding box is grown by this times its size."""

    def split_options(self) -> SplitOptions:
        """The options that choose the frames of each split."""
        return SplitOptions(
            self.label_frames,
            self.eval_source,
            self.eval_interval,
            self.eval_frames,
            self.eval_view_set,
            self.withheld_frames,
        )


def scene_outputs(
    scene: SceneDescription, split: str, config: SemanticFlowDataParserConfig, name: str = "semflow-data"
) -> DataparserOutputs:
    """nerfstudio outputs of one split of a loaded scene; every DataParser of the plugin ends here.

    Args:
        scene: the scene, as read by :func:`load_scene`.
        split: "train", or "val"/"test" (the evaluation images).
        config: split and box options.
        name: DataParser name for the console summary.
    """
    options = config.split_options()
    video_frames = training_frames(scene, options)
    withheld = withheld_indices(scene, options)
    frames = video_frames if split == "train" else eval_frames(scene, options)
    box = torch.from_numpy(scene_bounds(scene, config.box_margin)).float()
    labelled = [
        f.semantics is not None for f in training_frames(scene, dataclasses.replace(options, withheld_frames=""))
    ]
    video = VideoFrames(
        image_filenames=[f.image for f in scene.frames],
        cameras=frames_to_cameras(scene.frames),
        labelled=labelled,  # as the label subset says: frames left out of training do not count as unlabelled
        withheld=withheld,
    )
    info = SceneInfo(
        classes=list(scene.classes),
        instances=list(scene.instances),
        near=scene.near,
        far=scene.far,
        has_labels=any(f.semantics is not None for f in video_frames),
        unbounded=scene.unbounded,
        approximate_poses=scene.approximate_poses,
        has_depth=any(f.sparse_depth is not None or f.depth is not None for f in video_frames),
    )
    semantics = Semantics(
        filenames=[f.semantics for f in frames],  # type: ignore[misc]  # None marks an unlabelled image
        classes=[c.name for c in scene.classes],
        colors=torch.tensor([c.color for c in scene.classes], dtype=torch.float32) / 255.0,
    )
    if split == "train":
        CONSOLE.print(
            f"[bold]{name}[/bold]: {scene.root} - {len(scene.frames)} video frames, "
            f"{len(scene.eval_frames)} held-out views, {len(scene.classes)} classes "
            f"({', '.join(c.name for c in scene.classes)}); {describe_labels(video_frames, options)}"
            + ("; unbounded" if scene.unbounded else "")
            + ("; approximate poses (refined in training)" if scene.approximate_poses else "")
            + (f"; {len(withheld)} frames left out of training (--withheld-frames)" if withheld else "")
        )
    cameras = frames_to_cameras(frames)
    # which video frame each camera is (-1: a held-out view); the model moves video frames to their refined
    # poses when it renders them. The training split is the whole video in order: camera i is frame i.
    frame_index = {f.image: i for i, f in enumerate(scene.frames)}
    cameras.metadata = {VIDEO_FRAME_KEY: torch.tensor([[frame_index.get(f.image, -1)] for f in frames])}
    return DataparserOutputs(
        image_filenames=[f.image for f in frames],
        cameras=cameras,
        scene_box=SceneBox(aabb=box),
        metadata={"semantics": semantics, "semflow_frames": frames, "semflow_video": video, "semflow_scene": info},
    )


class SemanticFlowDataParser(DataParser):
    """Parses a semflow scene folder into nerfstudio's DataparserOutputs with times and semantics."""

    config: SemanticFlowDataParserConfig
    includes_time: bool = True

    def _load(self) -> SceneDescription:
        root = Path(self.config.data).expanduser()
        if root.resolve() == default_demo_dir().resolve():
            ensure_demo_scene(root)
        return load_scene(root)

    def _generate_dataparser_outputs(self, split: str = "train", **kwargs) -> DataparserOutputs:
        return scene_outputs(self._load(), split, self.config)
