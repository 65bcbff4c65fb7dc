"""Small synthetic videos of the demo scene with known cameras, for the pose-chain tests.

The demo world (:mod:`semflow_ns.data.demo.scene`: a room with crates, a pillar, two balls and a cube that move)
rendered by the demo renderer along camera paths of our own: a camera that translates sideways (parallax) and
one that only turns on the spot. Frames, masks of the moving classes and the true cameras are written like a
user's clip (``images/``, ``masks/``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from semflow_ns.data.demo.render import render_view
from semflow_ns.data.demo.scene import build_world, intrinsics, look_at

MOVING_CLASSES = (4, 5)
"""Class ids of the balls and the cube (``scene.CLASSES``)."""


def camera(kind: str, t: float) -> np.ndarray:
    """OpenGL camera-to-world at normalised time ``t``: ``translate`` moves 1 m sideways while turning a little
    (about 1.5 m from the nearest content), ``rotate`` stays at one point and turns by 50 degrees."""
    if kind == "translate":
        eye, target = np.array([-1.2 + 1.0 * t, -1.5, 1.2]), np.array([-0.2 + 0.6 * t, 0.5, 0.5])
    elif kind == "rotate":
        eye = np.array([0.0, -1.6, 1.2])
        angle = np.radians(-30.0 + 50.0 * t)
        target = eye + np.array([np.sin(angle), np.cos(angle), -0.35 + 0.1 * t])
    else:
        raise ValueError(kind)
    return look_at(eye, target)


def write_clip(folder: Path, kind: str, frames: int = 16, width: int = 192, height: int = 144) -> np.ndarray:
    """Renders the clip into ``folder/images`` and ``folder/masks`` (255 on moving objects); returns the true
    camera-to-world matrices [frames, 4, 4]."""
    world, intr = build_world(0), intrinsics(width, height)
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    poses = []
    for i in range(frames):
        t = i / (frames - 1)
        c2w = camera(kind, t)
        view = render_view(world, c2w, intr, t, supersample=1)
        Image.fromarray(view.rgb).save(folder / "images" / f"{i:05d}.png")
        moving = np.isin(view.semantics, MOVING_CLASSES).astype(np.uint8) * 255
        Image.fromarray(moving).save(folder / "masks" / f"{i:05d}.png")
        poses.append(c2w)
    return np.stack(poses)


def similarity_aligned(estimate: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``estimate`` points [N, 3] moved by the similarity that best fits them to ``truth`` (Umeyama)."""
    mean_e, mean_t = estimate.mean(0), truth.mean(0)
    centred_e, centred_t = estimate - mean_e, truth - mean_t
    u, singular, vt = np.linalg.svd(centred_t.T @ centred_e / len(estimate))
    sign = np.eye(3)
    sign[2, 2] = np.sign(np.linalg.det(u @ vt))
    rotation = u @ sign @ vt
    scale = np.trace(np.diag(singular) @ sign) / centred_e.var(0).sum()
    return scale * centred_e @ rotation.T + mean_t


def trajectory_error(estimate: np.ndarray, truth: np.ndarray) -> float:
    """RMS distance between camera centres after a similarity alignment, as a fraction of the true path length."""
    aligned = similarity_aligned(estimate, truth)
    path = float(np.linalg.norm(np.diff(truth, axis=0), axis=1).sum())
    return float(np.sqrt(np.mean(np.sum((aligned - truth) ** 2, axis=1)))) / path
