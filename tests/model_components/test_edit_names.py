"""Scene edits by name: forgiving spellings, and errors that list the valid names."""

import pytest

from semflow_ns.data.format import InstanceInfo
from semflow_ns.model_components.edit_names import EditError, EditRequest, class_ids, instance_ids, resolve_edit
from semflow_ns.model_components.editing import SceneEdit

CLASSES = ["floor", "traffic light", "ball"]
INSTANCES = [InstanceInfo(1, "ball", "rolling ball"), InstanceInfo(7, "traffic light", "left light")]


def test_names_ignore_case_underscores_and_dashes():
    assert class_ids(["Traffic_Light", "BALL", "traffic-light"], CLASSES) == {1, 2}
    assert instance_ids(["Rolling_Ball", "7"], INSTANCES) == {1, 7}


def test_an_unknown_class_lists_the_classes():
    with pytest.raises(
        EditError, match=r"--remove-classes: unknown class 'cat'; the scene's classes are: floor, traffic light, ball"
    ):
        resolve_edit(EditRequest(remove_classes=("cat",)), CLASSES, INSTANCES)


def test_an_unknown_instance_lists_the_instances_or_says_there_are_none():
    with pytest.raises(EditError, match=r"'rolling ball' \(id 1, ball\), 'left light' \(id 7, traffic light\)"):
        instance_ids(["3"], INSTANCES)
    with pytest.raises(EditError, match="this scene has no instance labels"):
        instance_ids(["rolling ball"], [])


def test_resolve_edit_maps_every_field():
    request = EditRequest(("ball",), ("left light",), ("floor",), dim=0.5)
    assert resolve_edit(request, CLASSES, INSTANCES) == SceneEdit({2}, {7}, {0}, 0.5)
    assert EditRequest().empty and not request.empty
    with pytest.raises(EditError, match=r"dim must lie in \[0, 1\]"):
        resolve_edit(EditRequest(dim=1.5), CLASSES, INSTANCES)
