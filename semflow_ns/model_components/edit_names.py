"""Scene edits by name: turns the class and instance names a user types into a :class:`SceneEdit`.

The model works with class ids and instance ids; people (and the command lines `semflow-render`,
`semflow-export`, the `--pipeline.model.remove-classes` options) use names. This module is the one
place where names are matched, so that every entry point accepts the same spellings and reports an
unknown name the same way: with the list of valid names.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from semflow_ns.data.format import InstanceInfo
from semflow_ns.model_components.editing import SceneEdit


class EditError(ValueError):
    """An edit the scene cannot apply (an unknown class or instance name: the message lists the valid ones)."""


@dataclass(frozen=True)
class EditRequest:
    """A scene edit as names, before it is checked against a scene's vocabulary."""

    remove_classes: tuple[str, ...] = ()
    """Class names whose samples are removed from renders."""
    remove_instances: tuple[str, ...] = ()
    """Instance names (or ids, as text) whose samples are removed from renders."""
    highlight_classes: tuple[str, ...] = ()
    """Class names kept bright while the rest of `rgb` is dimmed."""
    dim: float = 0.2
    """Brightness kept by dimmed pixels in highlight mode."""

    @property
    def empty(self) -> bool:
        return not (self.remove_classes or self.remove_instances or self.highlight_classes)


def _normalise(name: str) -> str:
    return " ".join(name.replace("_", " ").replace("-", " ").split()).lower()


def class_ids(names: Sequence[str], class_names: Sequence[str], option: str = "class") -> set[int]:
    """Ids of ``names`` in ``class_names``; case, underscores, dashes and extra spaces are ignored.

    Raises:
        EditError: a name matches no class; the message names ``option`` and lists the classes.
    """
    lookup = {_normalise(c): i for i, c in enumerate(class_names)}
    ids = set()
    for name in names:
        key = _normalise(name)
        if key not in lookup:
            raise EditError(f"{option}: unknown class {name!r}; the scene's classes are: {', '.join(class_names)}")
        ids.add(lookup[key])
    return ids


def instance_ids(names: Sequence[str], instances: Sequence[InstanceInfo], option: str = "instance") -> set[int]:
    """Ids of the instances called ``names`` (an instance name, or its id written as a number).

    Raises:
        EditError: a name matches no instance (or the scene has none); the message lists them.
    """
    lookup = {_normalise(i.name): i.id for i in instances} | {str(i.id): i.id for i in instances}
    ids = set()
    for name in names:
        key = _normalise(name)
        if key not in lookup:
            valid = ", ".join(f"{i.name!r} (id {i.id}, {i.class_name})" for i in instances)
            raise EditError(
                f"{option}: unknown instance {name!r}; "
                + (f"the scene's instances are: {valid}" if instances else "this scene has no instance labels")
            )
        ids.add(lookup[key])
    return ids


def resolve_edit(request: EditRequest, class_names: Sequence[str], instances: Sequence[InstanceInfo]) -> SceneEdit:
    """The :class:`SceneEdit` (ids) that ``request`` (names) means for a scene.

    Raises:
        EditError: a name the scene does not have, or a `dim` outside [0, 1].
    """
    if not 0.0 <= request.dim <= 1.0:
        raise EditError(f"dim must lie in [0, 1], got {request.dim}")
    return SceneEdit(
        removed_classes=class_ids(request.remove_classes, class_names, "--remove-classes"),
        removed_instances=instance_ids(request.remove_instances, instances, "--remove-instances"),
        highlighted_classes=class_ids(request.highlight_classes, class_names, "--highlight-classes"),
        dim=request.dim,
    )
