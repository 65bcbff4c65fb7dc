"""Configuration of the procedural demo scene and the version stamp written into it."""

from dataclasses import dataclass

import numpy as np

from semflow_ns.data.producers.optical_flow import PRESETS

DEMO_VERSION = 3
"""Bumped whenever the generated content changes, so that cached demo scenes get regenerated."""


@dataclass
class DemoSceneConfig:
    """What to render for the demo scene. The motion is defined over normalised time [0, 1], so changing
    ``num_frames`` resamples the same video more or less densely."""

    num_frames: int = 48
    """Frames of the training video (one camera pose and one time step each)."""
    width: int = 128
    """Image width in pixels."""
    height: int = 96
    """Image height in pixels."""
    num_eval_times: int = 12
    """Video times that get held-out evaluation views: two nearby cameras on the training arc each, and (with
    ``novel_views``) two novel cameras."""
    novel_views: bool = True
    """Also render the novel held-out views: for each evaluation time, a camera raised above the arc (at least
    10 degrees from every training camera) at that frame's time and another one halfway to the next frame's
    time (a time no training frame has)."""
    seed: int = 0
    """Seed of the procedural textures (noise and per-tile/per-brick tints); the layout and motion are fixed."""
    frames_per_sweep: int = 12
    """Frames per pass of the training camera over its 80-degree arc; it walks the arc back and forth,
    num_frames / frames_per_sweep times (at least once). The paper's data (the Nvidia rig protocol: frame t from
    rig camera t) gives every time step a wide baseline; sweeping does the same for one moving camera.
    0 = a single slow one-way pan, where the depth of moving objects is ambiguous without a depth prior."""
    supersample: int = 2
    """RGB is averaged over supersample x supersample rays per pixel (labels and depth use the centre ray)."""
    flow_preset: str = "medium"
    """OpenCV DIS preset of the estimated training flow: "ultrafast", "fast" or "medium"."""

    def validate(self) -> None:
        """Raises ValueError naming the first field with an unusable value."""
        if self.num_frames < 2:
            raise ValueError(f"num_frames must be at least 2, got {self.num_frames}")
        if self.width < 8 or self.height < 8:
            raise ValueError(f"width and height must be at least 8 pixels, got {self.width}x{self.height}")
        if not 0 <= self.num_eval_times <= self.num_frames:
            raise ValueError(f"num_eval_times must lie in [0, num_frames={self.num_frames}], got {self.num_eval_times}")
        if self.frames_per_sweep < 0:
            raise ValueError(f"frames_per_sweep must be >= 0, got {self.frames_per_sweep}")
        if self.supersample < 1:
            raise ValueError(f"supersample must be at least 1, got {self.supersample}")
        if self.flow_preset not in PRESETS:
            raise ValueError(f"flow_preset must be one of {sorted(PRESETS)}, got {self.flow_preset!r}")

    @property
    def camera_sweeps(self) -> int:
        """Passes over the arc in the whole video."""
        if self.frames_per_sweep == 0:
            return 1
        return max(1, round(self.num_frames / self.frames_per_sweep))


def eval_time_indices(num_frames: int, num_eval_times: int) -> list[int]:
    """Training-frame indices whose times get evaluation views, spread evenly over the video.

    Frame ``round((k + 0.5) * num_frames / num_eval_times)`` for k = 0 .. num_eval_times - 1 (for 48 frames
    and 12 times: 2, 6, 10, ..., 46), clipped to the video and de-duplicated.
    """
    if num_eval_times <= 0:
        return []
    step = num_frames / num_eval_times
    indices = [min(num_frames - 1, int((k + 0.5) * step)) for k in range(num_eval_times)]
    return sorted(set(indices))


EVAL_ARC_OFFSET = 1.0 / 12.0
"""Held-out cameras sit this fraction of the arc (6.7 degrees) on either side of the training camera."""


def eval_arc_positions(position: float, offset: float = EVAL_ARC_OFFSET) -> tuple[float, float]:
    """Arc positions of the two held-out cameras for a training camera at ``position``.

    ``position - offset`` and ``position + offset``; one that falls off the arc is replaced by the position
    ``2 * offset`` away on the other side. This mirrors rendering each time from other cameras of a rig.
    """
    before, after = position - offset, position + offset
    if before < 0.0:
        before = position + 2.0 * offset
    if after > 1.0:
        after = position - 2.0 * offset
    first, second = sorted(min(max(p, 0.0), 1.0) for p in (before, after))
    return first, second


NOVEL_RAISE = 0.8
"""Novel held-out cameras sit this much (metres) above the training arc, at about 2 m instead of 1.2 m."""
MIN_NOVEL_ANGLE_DEGREES = 10.0
"""Least angle between the viewing direction of a novel held-out camera and that of any training camera."""


def novel_view_times(times: list[float], index: int) -> tuple[float, float]:
    """Times of the two novel views of evaluation frame ``index``: its own time, and halfway to the next frame's
    time (to the previous one for the last frame)."""
    other = index + 1 if index + 1 < len(times) else index - 1
    return times[index], 0.5 * (times[index] + times[other])


def viewing_angle_degrees(pose: np.ndarray, poses: list[np.ndarray]) -> float:
    """Least angle (degrees) between the optical axis of camera-to-world ``pose`` and those of ``poses``."""
    axis = -np.asarray(pose)[:3, 2]
    others = -np.stack([np.asarray(p)[:3, 2] for p in poses])
    cosines = others @ axis / (np.linalg.norm(others, axis=1) * np.linalg.norm(axis))
    return float(np.degrees(np.arccos(np.clip(cosines, -1.0, 1.0))).min())
