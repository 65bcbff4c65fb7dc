"""The time at which a camera is rendered, for cameras that come without a usable one.

A Semantic Flow model renders a moment of the video, so every camera needs a time in [0, 1]. Most
callers give one (the viewer's time slider, `ns-render camera-path` with `render_time` on every
keyframe, `ns-render spiral`, `ns-render dataset`), but some do not:

- nerfstudio 1.1.5's `ns-render interpolate` (and camera paths where some keyframe lacks
  `render_time`) hand over cameras with ``times=None``; these are rendered at the model's
  ``default_render_time``;
- hand-written camera paths may hold times outside [0, 1]; these are clamped to [0, 1], i.e. to the
  first or last frame of the video.

Either case is reported once per model (not once per frame), so a render prints one line saying
what happened instead of failing or silently picking a time.
"""

from dataclasses import replace

import torch
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.utils.rich_utils import CONSOLE


class RenderTimes:
    """Fills in missing camera times and clamps times outside [0, 1], telling the user once.

    Args:
        default_time: time in [0, 1] given to cameras without times.

    Raises:
        ValueError: ``default_time`` outside [0, 1].
    """

    def __init__(self, default_time: float) -> None:
        if not 0.0 <= default_time <= 1.0:
            raise ValueError(f"default_render_time must lie in [0, 1] (0 = first frame), got {default_time}")
        self.default_time = default_time
        self.reported: set[str] = set()
        """Kinds of messages already printed ("missing", "outside")."""

    def _report(self, kind: str, message: str) -> None:
        if kind not in self.reported:
            self.reported.add(kind)
            CONSOLE.print(f"[bold yellow]Semantic Flow:[/bold yellow] {message}")

    def resolve(self, camera: Cameras) -> Cameras:
        """``camera`` with times set and within [0, 1] (a copy when anything changes).

        Args:
            camera: the camera(s) to render; any batch shape.
        """
        times = camera.times
        if times is None:
            self._report(
                "missing",
                f"the camera has no time (nerfstudio's `ns-render interpolate` drops them, as do camera paths "
                f"where a keyframe lacks `render_time`); rendering at t = {self.default_time:g}, the model's "
                "default_render_time (`semflow-render --default-render-time T` picks another; "
                "`semflow-camera-path` writes camera paths with times).",
            )
            filled = torch.full((*camera.shape, 1), self.default_time, device=camera.device)
            return replace(camera, times=filled)
        outside = (times < 0.0) | (times > 1.0)
        if bool(outside.any()):
            worst = float(times[outside].flatten()[0])
            self._report(
                "outside",
                f"camera time {worst:g} lies outside the video's [0, 1] (0 = first frame, 1 = last); "
                "times are clamped to [0, 1].",
            )
            return replace(camera, times=times.clamp(0.0, 1.0))
        return camera
