"""Procedural albedo textures of the demo scene.

Each texture maps points and unit normals in an object's local frame ([M, 3] each, metres) to linear RGB
albedo in [0, 1] ([M, 3]). Because they are evaluated in the local frame, textures move and rotate with
their object. Feature sizes are kept at a few centimetres or more, i.e. at least ~3 pixels at the default
128x96 resolution, so that a fast NeRF can fit the images and optical flow has structure to follow.
"""

from collections.abc import Callable

import numpy as np

Texture = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""(local points [M, 3], local normals [M, 3]) -> albedo [M, 3] in [0, 1]."""


class ValueNoise:
    """Smooth 2D value noise in [0, 1] on a random periodic lattice with unit cell size."""

    def __init__(self, rng: np.random.Generator, size: int = 64):
        self.size = size
        self.grid = rng.random((size, size))

    def lattice(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Raw lattice values at integer cells (i, j): one uniform random number per cell."""
        return self.grid[np.mod(i, self.size).astype(np.int64), np.mod(j, self.size).astype(np.int64)]

    def __call__(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        iu, iv = np.floor(u), np.floor(v)
        fu, fv = _smooth(u - iu), _smooth(v - iv)
        top = (1 - fu) * self.lattice(iu, iv) + fu * self.lattice(iu + 1, iv)
        bottom = (1 - fu) * self.lattice(iu, iv + 1) + fu * self.lattice(iu + 1, iv + 1)
        return (1 - fv) * top + fv * bottom


def _smooth(x: np.ndarray) -> np.ndarray:
    """Cubic smoothstep on [0, 1]."""
    return x * x * (3.0 - 2.0 * x)


def smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    """0 below ``edge0``, 1 above ``edge1``, cubic in between."""
    return _smooth(np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0))


def _mix(a: np.ndarray, b: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Per-point blend of colours: ``a`` where weight is 0, ``b`` where it is 1."""
    return a + (b - a) * weight[:, None]


def _rgb(*values: float) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


def floor_texture(noise: ValueNoise) -> Texture:
    """Checkerboard of 0.4 m stone tiles with per-tile tint and soft 12 cm-scale mottling."""

    def texture(points: np.ndarray, normals: np.ndarray) -> np.ndarray:
        u, v = points[:, 0] / 0.4, points[:, 1] / 0.4
        checker = (np.floor(u) + np.floor(v)) % 2
        base = _mix(np.broadcast_to(_rgb(0.76, 0.72, 0.63), points.shape), _rgb(0.50, 0.44, 0.38), checker)
        tint = 0.88 + 0.24 * noise.lattice(np.floor(u) + 7, np.floor(v) + 3)
        mottle = 0.92 + 0.16 * noise(points[:, 0] / 0.12, points[:, 1] / 0.12)
        return base * (tint * mottle)[:, None]

    return texture


def _bricks(noise: ValueNoise, along: np.ndarray, height: np.ndarray) -> np.ndarray:
    """0.6 x 0.3 m bricks in running bond with soft 5 cm mortar joints; coordinates in metres on the wall."""
    row = np.floor(height / 0.3)
    shifted = along / 0.6 + 0.5 * (row % 2)
    col = np.floor(shifted)
    from_centre_u = np.abs(shifted - col - 0.5) * 0.6
    from_centre_v = np.abs(height / 0.3 - row - 0.5) * 0.3
    brick = smoothstep(0.29, 0.26, from_centre_u) * smoothstep(0.14, 0.11, from_centre_v)
    brick_colour = _rgb(0.70, 0.40, 0.30) * (0.85 + 0.3 * noise.lattice(col + 11, row + 5))[:, None]
    return _mix(np.broadcast_to(_rgb(0.68, 0.60, 0.52), (len(along), 3)), brick_colour, brick)


def _wallpaper(noise: ValueNoise, along: np.ndarray, height: np.ndarray) -> np.ndarray:
    """Soft vertical stripes with a 35 cm period and 20 cm-scale mottling."""
    stripe = smoothstep(-0.6, 0.6, np.sin(2 * np.pi * along / 0.35))
    paper = _mix(np.broadcast_to(_rgb(0.40, 0.54, 0.62), (len(along), 3)), _rgb(0.78, 0.80, 0.70), stripe)
    return paper * (0.88 + 0.24 * noise(along / 0.2 + 20, height / 0.2))[:, None]


def wall_texture(noise: ValueNoise) -> Texture:
    """Brick walls at y = +-2 m, striped wallpaper at x = +-2 m, a plain mottled ceiling."""

    def texture(points: np.ndarray, normals: np.ndarray) -> np.ndarray:
        faces_y = np.abs(normals[:, 1]) > 0.5
        along = np.where(faces_y, points[:, 0], points[:, 1])
        walls = np.where(faces_y[:, None], _bricks(noise, along, points[:, 2]), _wallpaper(noise, along, points[:, 2]))
        mottle = 0.85 + 0.3 * noise(points[:, 0] / 0.3, points[:, 1] / 0.3 + 40)
        ceiling = _rgb(0.86, 0.85, 0.82) * mottle[:, None]
        return np.where((normals[:, 2] < -0.5)[:, None], ceiling, walls)

    return texture


def crate_texture(noise: ValueNoise, half: tuple[float, float, float]) -> Texture:
    """Wooden crate with half side lengths ``half``: 12 cm planks, stretched grain and a darker 5 cm frame."""
    half_arr = np.asarray(half)

    def texture(points: np.ndarray, normals: np.ndarray) -> np.ndarray:
        axis = np.argmax(np.abs(normals), axis=-1)
        u = np.where(axis == 0, points[:, 1], points[:, 0])
        v = np.where(axis == 2, points[:, 1], points[:, 2])
        half_u = np.where(axis == 0, half_arr[1], half_arr[0])
        half_v = np.where(axis == 2, half_arr[1], half_arr[2])
        plank = np.floor(v / 0.12)
        grain = noise(u / 0.25 + 3 * plank, v / 0.04 + 50)
        wood = _rgb(0.66, 0.47, 0.26) * (0.75 + 0.25 * grain + 0.2 * noise.lattice(plank + 30, axis))[:, None]
        border = np.minimum(half_u - np.abs(u), half_v - np.abs(v))
        return _mix(wood, _rgb(0.36, 0.24, 0.13), smoothstep(0.055, 0.045, border))

    return texture


def pillar_texture(noise: ValueNoise) -> Texture:
    """Pillar with 25 cm horizontal bands (cream and teal) and a vertical seam pattern."""

    def texture(points: np.ndarray, normals: np.ndarray) -> np.ndarray:
        band = smoothstep(-0.3, 0.3, np.sin(2 * np.pi * points[:, 2] / 0.5))
        colour = _mix(np.broadcast_to(_rgb(0.85, 0.82, 0.70), points.shape), _rgb(0.20, 0.52, 0.52), band)
        angle = np.arctan2(points[:, 1], points[:, 0])
        seam = smoothstep(0.5, 0.8, np.cos(4 * angle))
        return colour * (0.8 + 0.15 * seam + 0.1 * noise(angle * 3, points[:, 2] / 0.2 + 60))[:, None]

    return texture


def beach_ball_texture(colours: np.ndarray) -> Texture:
    """Sphere with six longitude sectors cycling through ``colours`` [K, 3] and white polar caps."""

    def texture(points: np.ndarray, normals: np.ndarray) -> np.ndarray:
        angle = np.arctan2(normals[:, 1], normals[:, 0])
        sector = np.floor((angle + np.pi) / (2 * np.pi) * 6).astype(np.int64) % 6
        colour = colours[sector % len(colours)]
        cap = smoothstep(0.82, 0.88, np.abs(normals[:, 2]))
        return _mix(colour, _rgb(0.95, 0.95, 0.92), cap)

    return texture


def checker_ball_texture(dark: np.ndarray, light: np.ndarray) -> Texture:
    """Sphere with a 6 x 3 latitude-longitude checkerboard (60-degree cells) of two colours."""

    def texture(points: np.ndarray, normals: np.ndarray) -> np.ndarray:
        lon = np.arctan2(normals[:, 1], normals[:, 0])
        lat = np.arcsin(np.clip(normals[:, 2], -1.0, 1.0))
        cell = np.floor((lon + np.pi) / (np.pi / 3)) + np.floor((lat + np.pi / 2) / (np.pi / 3))
        return _mix(np.broadcast_to(dark, points.shape), light, cell % 2)

    return texture


def cube_texture(face_colours: np.ndarray, half: float) -> Texture:
    """Cube with one colour per face (``face_colours`` [6, 3]: +x, -x, +y, -y, +z, -z) and a light disc."""

    def texture(points: np.ndarray, normals: np.ndarray) -> np.ndarray:
        axis = np.argmax(np.abs(normals), axis=-1)
        face = 2 * axis + (normals[np.arange(len(normals)), axis] < 0)
        in_plane = np.where(np.eye(3, dtype=bool)[axis], 0.0, points)
        radius = np.linalg.norm(in_plane, axis=-1) / half
        disc = smoothstep(0.55, 0.45, radius)
        return _mix(face_colours[face], _rgb(0.95, 0.93, 0.85), 0.8 * disc)

    return texture
