"""Ground truth for object removal: any view of a generated demo scene, rendered with objects taken out.

The demo is procedural, so the background behind a removed object is known exactly (the renderer has no
shadows or inter-reflections, so nothing else changes). This scores what a model reveals where it removes an
object (``semflow_ns.eval.removal``).
"""

from collections.abc import Callable, Sequence

from semflow_ns.data.demo.config import DEMO_VERSION, DemoSceneConfig
from semflow_ns.data.demo.render import RenderedView, render_view
from semflow_ns.data.demo.scene import DemoWorld, build_world
from semflow_ns.data.format import FrameRecord, SceneDescription


def removable_names(world: DemoWorld) -> tuple[list[str], list[str]]:
    """(class names, instance names) that can be removed: the objects; the room's floor and walls cannot (no
    ray would hit anything behind them)."""
    objects = [b for b in world.bodies if b.instance_id > 0]
    return sorted({b.class_name for b in objects}), [b.name for b in objects]


def demo_world(scene: SceneDescription) -> tuple[DemoWorld, DemoSceneConfig]:
    """The world that rendered ``scene``, rebuilt from the generator settings stored in it.

    Raises:
        ValueError: ``scene`` is not a demo scene of this version (its world could not be rebuilt exactly).
    """
    where = scene.root / "transforms.json"
    if "demo_config" not in scene.extra:
        raise ValueError(f"{where}: not a generated demo scene (no demo_config); removal ground truth needs one")
    if scene.extra.get("demo_version") != DEMO_VERSION:
        raise ValueError(
            f"{where}: demo_version {scene.extra.get('demo_version')} is not this generator's ({DEMO_VERSION}); "
            "regenerate the scene (semflow-demo --overwrite)"
        )
    config = DemoSceneConfig(**scene.extra["demo_config"])
    return build_world(config.seed), config


def removal_renderer(
    scene: SceneDescription, classes: Sequence[str] = (), instances: Sequence[str] = ()
) -> Callable[[FrameRecord], RenderedView]:
    """A function that renders a view of the demo ``scene`` (its camera, intrinsics and time) with the named
    classes and instances removed from the world. The world is rebuilt and the names are checked once, here.

    Raises:
        ValueError: not a demo scene of this version, or a name that is not a removable class or instance
            (the message lists the valid ones).
    """
    world, config = demo_world(scene)
    class_names, instance_names = removable_names(world)
    unknown = [c for c in classes if c not in class_names] + [i for i in instances if i not in instance_names]
    if unknown:
        raise ValueError(f"cannot remove {unknown}: removable classes are {class_names}, instances {instance_names}")
    kept = DemoWorld(tuple(b for b in world.bodies if b.class_name not in classes and b.name not in instances))
    return lambda frame: render_view(kept, frame.camera_to_world, frame.intrinsics, frame.time, config.supersample)


def render_without(
    scene: SceneDescription, frame: FrameRecord, classes: Sequence[str] = (), instances: Sequence[str] = ()
) -> RenderedView:
    """One view of :func:`removal_renderer`."""
    return removal_renderer(scene, classes, instances)(frame)
