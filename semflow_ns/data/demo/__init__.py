"""A deterministic, procedurally rendered dynamic scene in the semflow scene format, written by our own code.

A closed, textured room (floor, walls, ceiling) with static objects (two crates, a pillar) and three moving
ones (a rolling and a bouncing ball of class "ball", a sliding and turning "cube"), filmed by a monocular
camera moving on an arc. Training frames carry RGB, semantic and instance labels, and optical flow estimated
from the rendered images with :mod:`semflow_ns.data.producers.optical_flow`; held-out views show the same times from
other poses of the camera path and carry depth; the analytic forward flow is stored for evaluation only.

Typical use::

    from semflow_ns.data.demo import default_demo_dir, ensure_demo_scene

    scene_dir = ensure_demo_scene(default_demo_dir())
"""

from semflow_ns.data.demo.cache import DemoStatus, default_demo_dir, demo_status, ensure_demo_scene
from semflow_ns.data.demo.config import DEMO_VERSION, DemoSceneConfig
from semflow_ns.data.demo.generate import GT_FLOW_DIR, generate_demo_scene

__all__ = [
    "DEMO_VERSION",
    "GT_FLOW_DIR",
    "DemoSceneConfig",
    "DemoStatus",
    "default_demo_dir",
    "demo_status",
    "ensure_demo_scene",
    "generate_demo_scene",
]
