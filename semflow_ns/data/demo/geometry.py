"""Analytic ray-primitive intersection and rigid-motion helpers for the demo renderer (vectorised numpy).

Every shape lives in its own local frame (centred at the origin, axis-aligned). Rays are given in that frame
as origins and directions [M, 3]; directions need not be normalised, distances ``t`` are in units of the
direction length. A miss is ``t = inf``. Only hits with ``t > EPS`` count, so rays start just off a surface.
"""

from dataclasses import dataclass

import numpy as np

EPS = 1e-6
"""Smallest accepted hit distance."""


def rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rotation matrix [3, 3] of ``angle`` radians about ``axis`` (right-handed, Rodrigues' formula)."""
    axis = np.asarray(axis, dtype=np.float64)
    x, y, z = axis / np.linalg.norm(axis)
    skew = np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])
    return np.eye(3) + np.sin(angle) * skew + (1.0 - np.cos(angle)) * (skew @ skew)


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray | None = None) -> np.ndarray:
    """OpenGL camera-to-world matrix [4, 4] at ``eye`` looking at ``target`` (x right, y up, looking down -z).

    Args:
        eye: camera centre in world coordinates.
        target: point the optical axis passes through.
        up: world up direction (default +z); must not be parallel to the viewing direction.
    """
    up = np.array([0.0, 0.0, 1.0]) if up is None else np.asarray(up, dtype=np.float64)
    forward = np.asarray(target, dtype=np.float64) - np.asarray(eye, dtype=np.float64)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    cam_up = np.cross(right, forward)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, cam_up, -forward, eye
    return c2w


def _solve_quadratic(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Smallest root > EPS of a t^2 + b t + c = 0 per element, inf where there is none."""
    disc = b * b - 4.0 * a * c
    root = np.sqrt(np.maximum(disc, 0.0))
    near = (-b - root) / (2.0 * a)
    far = (-b + root) / (2.0 * a)
    t = np.where(near > EPS, near, np.where(far > EPS, far, np.inf))
    return np.where(disc >= 0.0, t, np.inf)


@dataclass(frozen=True)
class Sphere:
    """Sphere of ``radius`` about the local origin."""

    radius: float

    def intersect(self, origins: np.ndarray, dirs: np.ndarray) -> np.ndarray:
        a = np.sum(dirs * dirs, axis=-1)
        b = 2.0 * np.sum(origins * dirs, axis=-1)
        c = np.sum(origins * origins, axis=-1) - self.radius**2
        return _solve_quadratic(a, b, c)

    def normal(self, points: np.ndarray) -> np.ndarray:
        return points / np.linalg.norm(points, axis=-1, keepdims=True)


@dataclass(frozen=True)
class Box:
    """Solid axis-aligned box with half side lengths ``half`` (x, y, z), seen from outside (slab method)."""

    half: tuple[float, float, float]

    def intersect(self, origins: np.ndarray, dirs: np.ndarray) -> np.ndarray:
        half = np.asarray(self.half)
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = 1.0 / dirs
            t0, t1 = (-half - origins) * inv, (half - origins) * inv
        t_near = np.nanmax(np.minimum(t0, t1), axis=-1)
        t_far = np.nanmin(np.maximum(t0, t1), axis=-1)
        hit = (t_far >= t_near) & (t_far > EPS) & (t_near > EPS)
        return np.where(hit, t_near, np.inf)

    def normal(self, points: np.ndarray) -> np.ndarray:
        scaled = points / np.asarray(self.half)
        axis = np.argmax(np.abs(scaled), axis=-1)
        normals = np.zeros_like(points)
        rows = np.arange(len(points))
        normals[rows, axis] = np.sign(scaled[rows, axis])
        return normals


@dataclass(frozen=True)
class Cylinder:
    """Capped cylinder about the local z axis: ``radius``, z in [-half_height, half_height]."""

    radius: float
    half_height: float

    def intersect(self, origins: np.ndarray, dirs: np.ndarray) -> np.ndarray:
        a = dirs[:, 0] ** 2 + dirs[:, 1] ** 2
        b = 2.0 * (origins[:, 0] * dirs[:, 0] + origins[:, 1] * dirs[:, 1])
        c = origins[:, 0] ** 2 + origins[:, 1] ** 2 - self.radius**2
        with np.errstate(divide="ignore", invalid="ignore"):
            side = _solve_quadratic(np.maximum(a, 1e-12), b, c)
            side_z = origins[:, 2] + side * dirs[:, 2]
            side = np.where(np.abs(side_z) <= self.half_height, side, np.inf)
            caps = np.full(len(origins), np.inf)
            for z in (-self.half_height, self.half_height):
                t = (z - origins[:, 2]) / dirs[:, 2]
                p = origins[:, :2] + t[:, None] * dirs[:, :2]
                ok = (t > EPS) & (np.sum(p * p, axis=-1) <= self.radius**2)
                caps = np.where(ok & (t < caps), t, caps)
        return np.minimum(side, caps)

    def normal(self, points: np.ndarray) -> np.ndarray:
        radial = np.concatenate([points[:, :2], np.zeros((len(points), 1))], axis=-1)
        radial /= np.maximum(np.linalg.norm(radial, axis=-1, keepdims=True), 1e-12)
        on_cap = np.abs(points[:, 2]) >= self.half_height - 1e-5
        cap = np.zeros_like(points)
        cap[:, 2] = np.sign(points[:, 2])
        return np.where(on_cap[:, None], cap, radial)


@dataclass(frozen=True)
class RoomShell:
    """Inside of the box [lo, hi] seen from within (walls and ceiling); normals point into the room.

    With ``open_bottom`` the face z = lo[2] is left out, so a separate floor shape can take those rays.
    """

    lo: tuple[float, float, float]
    hi: tuple[float, float, float]
    open_bottom: bool = True

    def intersect(self, origins: np.ndarray, dirs: np.ndarray) -> np.ndarray:
        lo, hi = np.asarray(self.lo), np.asarray(self.hi)
        with np.errstate(divide="ignore", invalid="ignore"):
            exits = np.where(dirs > 0, (hi - origins) / dirs, np.where(dirs < 0, (lo - origins) / dirs, np.inf))
        axis = np.argmin(exits, axis=-1)
        t = np.min(exits, axis=-1)
        if self.open_bottom:
            t = np.where((axis == 2) & (dirs[:, 2] < 0), np.inf, t)
        return np.where(t > EPS, t, np.inf)

    def normal(self, points: np.ndarray) -> np.ndarray:
        lo, hi = np.asarray(self.lo), np.asarray(self.hi)
        gaps = np.concatenate([points - lo, hi - points], axis=-1)
        face = np.argmin(gaps, axis=-1)
        normals = np.zeros_like(points)
        rows = np.arange(len(points))
        normals[rows, face % 3] = np.where(face < 3, 1.0, -1.0)
        return normals


@dataclass(frozen=True)
class FloorPlane:
    """The plane z = 0 seen from above (normal +z)."""

    def intersect(self, origins: np.ndarray, dirs: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            t = -origins[:, 2] / dirs[:, 2]
        return np.where((dirs[:, 2] < 0) & (t > EPS), t, np.inf)

    def normal(self, points: np.ndarray) -> np.ndarray:
        normals = np.zeros_like(points)
        normals[:, 2] = 1.0
        return normals


Shape = Sphere | Box | Cylinder | RoomShell | FloorPlane
"""Any primitive with ``intersect(origins, dirs) -> t`` and ``normal(points) -> unit normals``."""
