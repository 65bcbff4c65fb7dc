"""Colour codings: 2D optical flow (hue = direction, saturation = magnitude), instance ids and video time."""

import math

import numpy as np
import torch
from jaxtyping import Float
from nerfstudio.utils.colormaps import ColormapOptions, apply_colormap
from torch import Tensor


def flow_to_rgb(flow: Float[Tensor, "*bs 2"], max_magnitude: float = 0.0) -> Float[Tensor, "*bs 3"]:
    """Maps flow vectors to RGB in [0, 1].

    Args:
        flow: (dx, dy) in pixels, y pointing down.
        max_magnitude: magnitude shown fully saturated; 0 = the largest magnitude in ``flow``.
    """
    magnitude = torch.linalg.norm(flow, dim=-1)
    scale = max_magnitude if max_magnitude > 0 else float(magnitude.max().clamp(min=1e-6))
    saturation = (magnitude / scale).clamp(0.0, 1.0)
    hue = (torch.atan2(-flow[..., 1], -flow[..., 0]) / math.pi + 1.0) / 2.0  # [0, 1)
    sector = hue * 6.0
    channels = []
    for n in (5.0, 3.0, 1.0):  # HSV -> RGB with value 1, channels R, G, B
        k = torch.remainder(sector + n, 6.0)
        ramp = torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0)
        channels.append(1.0 - saturation * ramp)
    return torch.stack(channels, dim=-1)


def instance_palette(num: int) -> Float[Tensor, "num 3"]:
    """Distinct colours for instance ids 0..num-1; id 0 ("no instance") is dark grey.

    Hues step by the golden ratio so that consecutive ids look different.
    """
    ids = torch.arange(num, dtype=torch.float32)
    hue = torch.remainder(ids * 0.6180339887, 1.0)
    angle = hue * 2.0 * math.pi
    colors = flow_to_rgb(torch.stack([-torch.cos(angle), -torch.sin(angle)], dim=-1) * 0.7, max_magnitude=1.0) * 0.95
    colors[0] = 0.25
    return colors


def time_colours(times: Float[Tensor, "num"]) -> np.ndarray:
    """uint8 [num, 3] turbo colours of video times in [0, 1] (blue at the start, red at the end)."""
    rgb = apply_colormap(times.float().reshape(-1, 1).clamp(0.0, 1.0), ColormapOptions(colormap="turbo"))
    return (rgb.cpu().numpy() * 255.0).round().astype(np.uint8)
