"""Writes the demo scene folder: training video, labels, estimated flow, held-out views and ground truth.

Folder layout (all paths relative to the scene root, ``i`` = training frame, ``c`` = pose index):

* ``transforms.json`` - the scene description (see :mod:`semflow_ns.data.format`);
* ``images/{i:05d}.png``, ``semantics/{i:05d}.png``, ``instances/{i:05d}.png`` - the training video;
* ``flow/{i:05d}_fwd.npz``, ``flow/{i:05d}_bwd.npz`` - optical flow *estimated from the rendered images*
  with :mod:`semflow_ns.data.producers.optical_flow`, exactly as for a real video;
* ``eval/{images,semantics,instances}/t{i:05d}_v{k}.png`` and ``eval/depth/t{i:05d}_v{k}.npy`` - time of
  frame ``i`` seen from the two nearby held-out cameras on the training arc (``view_set`` ``nearby``);
* ``eval/.../t{i:05d}_n0`` and ``t{i:05d}_n1`` - novel held-out cameras 0.8 m above the arc, at the time of frame
  ``i`` and halfway to the next frame's time (``view_set`` ``novel``);
* ``gt/flow/{i:05d}_fwd.npy`` - analytic forward flow float32 [H, W, 2], for evaluation only.
"""

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import Progress

from semflow_ns.data.demo.config import (
    DEMO_VERSION,
    MIN_NOVEL_ANGLE_DEGREES,
    NOVEL_RAISE,
    DemoSceneConfig,
    eval_arc_positions,
    eval_time_indices,
    novel_view_times,
    viewing_angle_degrees,
)
from semflow_ns.data.demo.render import RenderedView, ground_truth_flow, render_view
from semflow_ns.data.demo.scene import (
    CLASSES,
    ROOM_HI,
    ROOM_LO,
    DemoWorld,
    arc_pose,
    arc_position,
    build_world,
    camera_pose,
    intrinsics,
)
from semflow_ns.data.format import (
    FrameRecord,
    Intrinsics,
    SceneDescription,
    load_scene,
    save_scene,
)
from semflow_ns.data.producers.optical_flow import FrameFlow, estimate_video_flow, progress_bar
from semflow_ns.data.producers.scene_files import write_flow_files, write_frame_files

GT_FLOW_DIR = "gt/flow"
"""Folder of the ground-truth forward flow, recorded in the scene's extra key ``gt_flow_dir``."""
NEAR = 0.05
"""Near plane distance (metres) written to the scene."""


@dataclass(frozen=True)
class _Video:
    """The world and the training camera path of one demo configuration."""

    config: DemoSceneConfig
    world: DemoWorld
    intr: Intrinsics
    times: list[float]
    """Normalised time of each training frame, i / (N - 1)."""
    poses: list[np.ndarray]
    """OpenGL camera-to-world [4, 4] of each training frame."""

    @classmethod
    def from_config(cls, config: DemoSceneConfig) -> "_Video":
        times = [i / (config.num_frames - 1) for i in range(config.num_frames)]
        world, intr = build_world(config.seed), intrinsics(config.width, config.height)
        return cls(config, world, intr, times, [camera_pose(time, config.camera_sweeps) for time in times])

    def render(self, pose: np.ndarray, time_index: int) -> RenderedView:
        """The scene at the time of frame ``time_index`` seen from camera-to-world ``pose``."""
        return render_view(self.world, pose, self.intr, self.times[time_index], self.config.supersample)


def _training_frame(
    root: Path, video: _Video, index: int, view: RenderedView, flow_files: dict[str, Path]
) -> FrameRecord:
    """Writes training frame ``index`` (image, labels) and returns its record, with its flow files."""
    paths = write_frame_files(root, f"{index:05d}", view.rgb, view.semantics, view.instances)
    return FrameRecord(
        camera_to_world=video.poses[index], time=video.times[index], intrinsics=video.intr, **paths, **flow_files
    )


def _render_video(video: _Video, bar: Progress) -> tuple[list[RenderedView], list[np.ndarray]]:
    """Renders the training views and their ground-truth forward flow (one fewer than views)."""
    task = bar.add_task("Rendering the demo video", total=len(video.times))
    views = []
    for index in range(len(video.times)):
        views.append(video.render(video.poses[index], index))
        bar.advance(task)
    gt_flows = [
        ground_truth_flow(video.world, views[i].hits, video.intr, video.poses[i + 1], video.times[i + 1])
        for i in range(len(views) - 1)
    ]
    return views, gt_flows


def _eval_frames(root: Path, video: _Video, bar: Progress) -> list[FrameRecord]:
    """Renders and writes the held-out views of every evaluation time: two ``nearby`` views from other points of
    the arc, then (``novel_views``) two ``novel`` views from above the arc, at the frame's time and between it and
    the next frame."""
    config = video.config
    indices = eval_time_indices(config.num_frames, config.num_eval_times)
    task = bar.add_task("Rendering held-out views", total=(4 if config.novel_views else 2) * len(indices))
    nearby, novel = [], []

    def write(name: str, pose: np.ndarray, time: float, view_set: str) -> FrameRecord:
        view = render_view(video.world, pose, video.intr, time, config.supersample)
        paths = write_frame_files(root / "eval", name, view.rgb, view.semantics, view.instances, depth=view.depth)
        bar.advance(task)
        return FrameRecord(camera_to_world=pose, time=time, intrinsics=video.intr, view_set=view_set, **paths)

    for index in indices:
        time = video.times[index]
        for view_id, position in enumerate(eval_arc_positions(arc_position(time, config.camera_sweeps))):
            nearby.append(write(f"t{index:05d}_v{view_id}", arc_pose(position, time), time, "nearby"))
        if not config.novel_views:
            continue
        for view_id, novel_time in enumerate(novel_view_times(video.times, index)):
            pose = arc_pose(arc_position(novel_time, config.camera_sweeps), novel_time, raise_by=NOVEL_RAISE)
            angle = viewing_angle_degrees(pose, video.poses)
            if angle < MIN_NOVEL_ANGLE_DEGREES:
                raise AssertionError(f"novel view of frame {index} is only {angle:.1f} deg from a training camera")
            novel.append(write(f"t{index:05d}_n{view_id}", pose, novel_time, "novel"))
    return nearby + novel


def flow_statistics(flows: list[FrameFlow], gt_flows: list[np.ndarray], views: list[RenderedView]) -> dict[str, float]:
    """Accuracy of the estimated forward flow against the analytic flow, and label statistics.

    Returns:
        ``epe_px``: mean end-point error (pixels) over all pixels; ``epe_consistent_px``: over pixels that pass
        the forward-backward check; ``epe_moving_px``: over pixels of moving classes; ``consistent_fraction``:
        share of forward and backward flow pixels that pass the check; ``mean_gt_flow_px``: mean true flow
        magnitude; ``moving_pixel_fraction``: share of training pixels showing a moving class.
    """
    dynamic = np.array([c.dynamic for c in CLASSES])
    errors = np.stack(
        [np.linalg.norm(f.fwd - gt, axis=-1) for f, gt in zip(flows[:-1], gt_flows, strict=True) if f.fwd is not None]
    )
    fwd_masks = np.stack([f.fwd_mask for f in flows if f.fwd_mask is not None])
    bwd_masks = np.stack([f.bwd_mask for f in flows if f.bwd_mask is not None])
    moving = np.stack([dynamic[v.semantics] for v in views])
    return {
        "epe_px": float(errors.mean()),
        "epe_consistent_px": float(errors[fwd_masks].mean()) if fwd_masks.any() else math.nan,
        "epe_moving_px": float(errors[moving[:-1]].mean()) if moving[:-1].any() else math.nan,
        "consistent_fraction": float(np.concatenate([fwd_masks.ravel(), bwd_masks.ravel()]).mean()),
        "mean_gt_flow_px": float(np.mean([np.linalg.norm(gt, axis=-1).mean() for gt in gt_flows])),
        "moving_pixel_fraction": float(moving.mean()),
    }


def _write_gt_flows(root: Path, gt_flows: list[np.ndarray]) -> None:
    (root / GT_FLOW_DIR).mkdir(parents=True, exist_ok=True)
    for index, flow in enumerate(gt_flows):
        np.save(root / GT_FLOW_DIR / f"{index:05d}_fwd.npy", flow.astype(np.float32))


def generate_demo_scene(
    output_dir: Path, config: DemoSceneConfig | None = None, progress: bool = True
) -> SceneDescription:
    """Renders the procedural demo scene into ``output_dir``, which should be new or empty (it is created if needed;
    files of the same name are overwritten, others are left alone).

    Args:
        output_dir: scene folder to write. Prefer :func:`ensure_demo_scene`, which writes atomically and never
            touches folders that are not demo scenes.
        config: what to render; None uses the defaults of :class:`DemoSceneConfig`.
        progress: show progress bars and print a one-line flow accuracy summary.

    Returns:
        The written scene as read back by :func:`load_scene`.
    """
    config = config if config is not None else DemoSceneConfig()
    config.validate()
    root = Path(output_dir).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    video = _Video.from_config(config)
    with progress_bar(progress) as bar:
        views, gt_flows = _render_video(video, bar)
    flows = estimate_video_flow([view.rgb for view in views], preset=config.flow_preset, progress=progress)
    with progress_bar(progress) as bar:
        flow_files = write_flow_files(root, [f"{i:05d}" for i in range(len(views))], flows)
        frames = [_training_frame(root, video, i, view, flow_files[i]) for i, view in enumerate(views)]
        eval_frames = _eval_frames(root, video, bar)
    _write_gt_flows(root, gt_flows)
    stats = flow_statistics(flows, gt_flows, views)
    extra: dict[str, Any] = {
        "demo_version": DEMO_VERSION,
        "demo_config": asdict(config),
        "gt_flow_dir": GT_FLOW_DIR,
        "flow_stats": {key: round(value, 4) if math.isfinite(value) else None for key, value in stats.items()},
    }
    far = float(np.linalg.norm(np.subtract(ROOM_HI, ROOM_LO)))
    scene_box = np.array([ROOM_LO, ROOM_HI], dtype=np.float64)
    save_scene(
        SceneDescription(root, list(CLASSES), frames, eval_frames, video.world.instances, scene_box, NEAR, far, extra)
    )
    if progress:
        Console().print(
            f"Demo flow check: end-point error {stats['epe_px']:.2f} px ({stats['epe_consistent_px']:.2f} px where "
            f"consistent, {stats['epe_moving_px']:.2f} px on moving objects), "
            f"{100 * stats['consistent_fraction']:.1f}% consistent; "
            f"moving objects cover {100 * stats['moving_pixel_fraction']:.1f}% of the pixels"
        )
    return load_scene(root)
