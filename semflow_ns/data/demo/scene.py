"""Content of the demo scene: the room, its objects, how they move, and the camera path.

World coordinates: metres, z up. The room spans x, y in [-2, 2] and z in [0, 2.5]. Motions and the camera
path are functions of normalised video time in [0, 1], so the number of frames only changes the sampling.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from semflow_ns.data.demo import textures as tex
from semflow_ns.data.demo.geometry import Box, Cylinder, FloorPlane, RoomShell, Shape, Sphere, look_at, rotation
from semflow_ns.data.format import InstanceInfo, Intrinsics, SemanticClass

ROOM_LO = (-2.0, -2.0, 0.0)
"""Lower corner of the room (metres)."""
ROOM_HI = (2.0, 2.0, 2.5)
"""Upper corner of the room (metres)."""
HORIZONTAL_FOV_DEGREES = 65.0
"""Horizontal field of view of every camera."""

CLASSES = (
    SemanticClass("floor", (152, 78, 163)),
    SemanticClass("wall", (150, 150, 150)),
    SemanticClass("crate", (255, 127, 0)),
    SemanticClass("pillar", (55, 126, 184)),
    SemanticClass("ball", (228, 26, 28), dynamic=True),
    SemanticClass("cube", (77, 175, 74), dynamic=True),
)
"""Semantic classes; a class id is the index in this tuple. "wall" covers the four walls and the ceiling."""

Pose = tuple[np.ndarray, np.ndarray]
"""Rigid pose (R [3, 3] local -> world rotation, centre [3] world position of the local origin)."""
Motion = Callable[[float], Pose]
"""Normalised time in [0, 1] -> pose."""


@dataclass(frozen=True)
class Body:
    """One rigid object of the scene."""

    name: str
    class_name: str
    instance_id: int
    """Value in the instance images; 0 (no instance) for the room surfaces."""
    shape: Shape
    texture: tex.Texture
    motion: Motion


@dataclass(frozen=True)
class DemoWorld:
    """All bodies of the scene with their semantic class ids."""

    bodies: tuple[Body, ...]

    @property
    def class_ids(self) -> np.ndarray:
        """int64 [num_bodies]: class id of each body."""
        names = [c.name for c in CLASSES]
        return np.array([names.index(b.class_name) for b in self.bodies], dtype=np.int64)

    @property
    def instance_ids(self) -> np.ndarray:
        """int64 [num_bodies]: instance id of each body (0 = none)."""
        return np.array([b.instance_id for b in self.bodies], dtype=np.int64)

    @property
    def instances(self) -> list[InstanceInfo]:
        """Instance list for the scene file (bodies with an instance id)."""
        return [InstanceInfo(b.instance_id, b.class_name, b.name) for b in self.bodies if b.instance_id > 0]

    def poses(self, time: float) -> list[Pose]:
        """Pose of every body at normalised time ``time``."""
        return [body.motion(time) for body in self.bodies]


def static_pose(centre: tuple[float, float, float], yaw_degrees: float = 0.0) -> Motion:
    """A body that never moves, turned by ``yaw_degrees`` about z."""
    pose = (rotation(np.array([0.0, 0.0, 1.0]), np.radians(yaw_degrees)), np.asarray(centre, dtype=np.float64))
    return lambda time: pose


def rolling_motion(start: tuple[float, float], end: tuple[float, float], radius: float) -> Motion:
    """A ball rolling without slipping on the floor from ``start`` to ``end`` (x, y) at constant speed."""
    a, b = np.array([*start, radius]), np.array([*end, radius])
    direction = b - a
    distance = float(np.linalg.norm(direction))
    axis = np.cross([0.0, 0.0, 1.0], direction / distance)

    def motion(time: float) -> Pose:
        return rotation(axis, distance * time / radius), a + time * direction

    return motion


def bouncing_motion(
    start: tuple[float, float], end: tuple[float, float], radius: float, height: float, bounces: float
) -> Motion:
    """A spinning ball hopping from ``start`` to ``end`` (x, y); its bottom reaches ``height`` metres."""
    a, b = np.array([*start, radius]), np.array([*end, radius])
    spin_axis = np.array([0.3, -0.5, 1.0])

    def motion(time: float) -> Pose:
        centre = a + time * (b - a)
        centre[2] += height * abs(np.sin(np.pi * (bounces * time + 0.3)))
        return rotation(spin_axis, 2.5 * np.pi * time), centre

    return motion


def sliding_motion(start: tuple[float, float], end: tuple[float, float], half: float, turns: float) -> Motion:
    """A cube of half side ``half`` sliding on the floor from ``start`` to ``end`` while turning about z."""
    a, b = np.array([*start, half]), np.array([*end, half])
    bend = np.array([0.0, 0.05, 0.0])

    def motion(time: float) -> Pose:
        centre = a + time * (b - a) + np.sin(np.pi * time) * bend
        return rotation(np.array([0.0, 0.0, 1.0]), 2 * np.pi * turns * time + 0.3), centre

    return motion


def _static_bodies(noise: tex.ValueNoise) -> list[Body]:
    """Floor, walls and ceiling (no instance), two crates and a floor-to-ceiling pillar."""
    room = static_pose((0.0, 0.0, 0.0))
    big, small = (0.35, 0.3, 0.3), (0.22, 0.2, 0.2)
    big_pose, small_pose = static_pose((-1.1, 0.9, 0.3), 20.0), static_pose((1.25, 0.45, 0.2), -15.0)
    return [
        Body("floor", "floor", 0, FloorPlane(), tex.floor_texture(noise), room),
        Body("walls", "wall", 0, RoomShell(ROOM_LO, ROOM_HI), tex.wall_texture(noise), room),
        Body("big crate", "crate", 1, Box(big), tex.crate_texture(noise, big), big_pose),
        Body("small crate", "crate", 2, Box(small), tex.crate_texture(noise, small), small_pose),
        Body("pillar", "pillar", 3, Cylinder(0.18, 1.25), tex.pillar_texture(noise), static_pose((0.55, 1.45, 1.25))),
    ]


def _moving_bodies() -> list[Body]:
    """Two balls (one rolling in front, one bouncing further back) and a cube sliding close to the camera."""
    rolling, bouncing, cube = 0.28, 0.22, 0.22
    beach = np.array([[0.85, 0.12, 0.10], [0.95, 0.80, 0.15], [0.92, 0.92, 0.88]])
    checker = tex.checker_ball_texture(np.array([0.15, 0.25, 0.70]), np.array([0.85, 0.90, 0.95]))
    faces = np.array([[0.15, 0.55, 0.25], [0.85, 0.55, 0.10], [0.20, 0.35, 0.75]] * 2)
    faces[3:] = faces[3:] * 0.7 + 0.2
    roll = rolling_motion((-0.8, 0.15), (0.5, 0.6), rolling)
    bounce = bouncing_motion((0.8, 0.95), (-0.4, 1.1), bouncing, 0.35, 2.5)
    slide = sliding_motion((0.6, -0.35), (-0.5, -0.3), cube, 0.6)
    return [
        Body("rolling ball", "ball", 4, Sphere(rolling), tex.beach_ball_texture(beach), roll),
        Body("bouncing ball", "ball", 5, Sphere(bouncing), checker, bounce),
        Body("cube", "cube", 6, Box((cube, cube, cube)), tex.cube_texture(faces, cube), slide),
    ]


def build_world(seed: int) -> DemoWorld:
    """The demo scene. ``seed`` only changes texture noise and tints; layout and motion are fixed."""
    noise = tex.ValueNoise(np.random.default_rng(seed))
    return DemoWorld((*_static_bodies(noise), *_moving_bodies()))


def intrinsics(width: int, height: int) -> Intrinsics:
    """Pinhole intrinsics with ``HORIZONTAL_FOV_DEGREES``, square pixels and the principal point at the centre."""
    focal = 0.5 * width / np.tan(np.radians(HORIZONTAL_FOV_DEGREES) / 2)
    return Intrinsics(fl_x=float(focal), fl_y=float(focal), cx=width / 2, cy=height / 2, w=width, h=height)


def arc_pose(position: float, time: float, raise_by: float = 0.0) -> np.ndarray:
    """Camera at fraction ``position`` in [0, 1] along the arc, at normalised ``time``: OpenGL camera-to-world [4, 4].

    The arc has radius 1.75 m about the room centre at about 1.2 m height (plus ``raise_by`` metres) and spans
    80 degrees; the height bobs slightly with time; the camera keeps looking at a point just above the floor centre.
    """
    angle = np.radians(-125.0 + 80.0 * position)
    height = 1.2 + raise_by + 0.05 * np.sin(3 * np.pi * time)
    eye = np.array([1.75 * np.cos(angle), 1.75 * np.sin(angle), height])
    target = np.array([0.0, 0.2, 0.35])
    return look_at(eye, target)


def arc_position(time: float, sweeps: int) -> float:
    """Where the training camera is on the arc at ``time``: ``sweeps`` passes, back and forth (a triangle wave)."""
    phase = (time * sweeps) % 2.0
    return phase if phase <= 1.0 else 2.0 - phase


def camera_pose(time: float, sweeps: int = 1) -> np.ndarray:
    """Training camera at normalised ``time``: the arc walked ``sweeps`` times over the video."""
    return arc_pose(arc_position(time, sweeps), time)
