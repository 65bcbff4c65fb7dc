"""Configuration of the procedural demo scene and the version stamp written into it."""

from dataclasses import dataclass

from semflow_ns.data.optical_flow import PRESETS

DEMO_VERSION = 1
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
    """Video times that get held-out evaluation views (two other cameras each)."""
    seed: int = 0
    """Seed of the procedural textures (noise and per-tile/per-brick tints); the layout and motion are fixed."""
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
        if self.supersample < 1:
            raise ValueError(f"supersample must be at least 1, got {self.supersample}")
        if self.flow_preset not in PRESETS:
            raise ValueError(f"flow_preset must be one of {sorted(PRESETS)}, got {self.flow_preset!r}")


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


def eval_camera_indices(index: int, num_frames: int) -> tuple[int, int]:
    """The two training-trajectory poses that view time ``index`` in the evaluation set.

    Poses ``index - d`` and ``index + d`` with ``d = max(1, round(4 * num_frames / 48))`` (4 frames for a
    48-frame video); a pose outside the video is replaced by the one at ``2 d`` on the other side, and the
    result is clipped to the video. This mirrors rendering each time from other cameras of a rig.
    """
    offset = max(1, round(4 * num_frames / 48))
    before, after = index - offset, index + offset
    if before < 0:
        before = index + 2 * offset
    if after > num_frames - 1:
        after = index - 2 * offset
    first, second = sorted(min(max(i, 0), num_frames - 1) for i in (before, after))
    return first, second
