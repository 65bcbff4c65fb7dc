"""The "Semantic Flow" panel of nerfstudio's viewer: class legend, removal and highlight controls.

The panel is one nerfstudio :class:`ViewerElement` that the model holds as a public attribute, so
nerfstudio's ``parse_object`` finds it (under "Custom Elements") during `ns-train` and in
`ns-viewer`. Installing it creates a "Semantic Flow" folder with nerfstudio's own elements:

- "Checkboxes": what unticking means — ``remove unticked`` (the class disappears from the render and
  whatever was behind it shows through) or ``highlight ticked`` (unticked classes are dimmed in rgb);
- "Dim others to": brightness of dimmed pixels in highlight mode;
- "Tick all": back to the unedited scene;
- "Legend": one colour swatch per class, in the colours of the ``semantics_colormap`` output;
- "Classes" and, for scenes with instance labels, "Instances": one checkbox each;
- with pointer tools (a single-scene model, see :mod:`semflow_ns.viewer.pointer`): "Click in render" chooses
  what a click in the render does (inspect the point and draw its path, or toggle the class / instance under
  the cursor, or every instance in a dragged box), and an "Inspect" folder shows the answer and clears paths.

Every control calls the panel's own ``cb_hook``. The viewer wraps that hook when it installs the
panel (under the training lock, followed by a re-render), so a change is applied to the model's
:class:`SceneEdit` and shows up in the next frame immediately.
"""

from collections.abc import Callable, Sequence
from typing import Any

from nerfstudio.models.base_model import Model
from nerfstudio.utils.rich_utils import CONSOLE
from nerfstudio.viewer.viewer_elements import (
    ViewerButton,
    ViewerCheckbox,
    ViewerDropdown,
    ViewerElement,
    ViewerRGB,
    ViewerSlider,
)
from torch import Tensor
from viser import GuiMarkdownHandle, ViserServer

from semflow_ns.data.format import InstanceInfo
from semflow_ns.model_components.edit_names import EditError, EditRequest, resolve_edit
from semflow_ns.model_components.editing import SceneEdit

REMOVE = "remove unticked"
HIGHLIGHT = "highlight ticked"
ORBIT = "nothing (orbit)"
INSPECT = "inspect point + path"
PICK_CLASS = "toggle class"
PICK_INSTANCE = "toggle instance"
PICK_BOX = "toggle instances in box"
"""What a click in the render does ("Click in render"); the box mode turns dragging into a box selection."""
READY = "Choose *inspect point + path* under **Click in render**, then click on the render."


def _rgb255(color: Tensor) -> tuple[int, int, int]:
    r, g, b = (int(round(float(c) * 255.0)) for c in color)
    return r, g, b


class SemanticFlowPanel(ViewerElement[None]):
    """Viewer controls that edit which classes and instances a model renders.

    Args:
        class_names: the scene's classes, in id order.
        class_colors: [num_classes, 3] colours in [0, 1] (those of ``semantics_colormap``).
        instances: the scene's instances (empty without instance labels).
        initial: the edit to show at start (e.g. from the model config).
        set_edit: called with the new edit whenever a control changes.
        pointer: add the pointer controls ("Click in render", "Inspect"); a
            :class:`~semflow_ns.viewer.pointer.PointerTools` gives them their meaning through ``on_pointer_mode``
            and ``on_clear``.
    """

    def __init__(
        self,
        class_names: Sequence[str],
        class_colors: Tensor,
        instances: Sequence[InstanceInfo],
        initial: SceneEdit,
        set_edit: Callable[[SceneEdit], None],
        pointer: bool = False,
    ) -> None:
        super().__init__("Semantic Flow", cb_hook=lambda _: self.apply())
        self._set_edit = set_edit
        self.instances = list(instances)
        highlight = bool(initial.highlighted_classes) and not initial.removed_classes
        changed = self._changed
        self.mode = ViewerDropdown(
            "Checkboxes",
            HIGHLIGHT if highlight else REMOVE,
            [REMOVE, HIGHLIGHT],
            cb_hook=changed,
            hint="remove unticked: unticked classes vanish from the render; highlight ticked: the others are dimmed",
        )
        self.dim = ViewerSlider("Dim others to", initial.dim, 0.0, 1.0, 0.05, cb_hook=changed)
        self.tick_all = ViewerButton("Tick all", cb_hook=lambda _: self.reset())
        self.legend = [
            ViewerRGB(name, _rgb255(color), disabled=True, hint=f"colour of {name} in semantics_colormap")
            for name, color in zip(class_names, class_colors, strict=True)
        ]
        chosen = initial.highlighted_classes if highlight else set(range(len(class_names))) - initial.removed_classes
        self.class_boxes = [
            ViewerCheckbox(name, i in chosen, cb_hook=changed, hint=f"class {i}") for i, name in enumerate(class_names)
        ]
        self.instance_boxes = [
            ViewerCheckbox(
                f"{inst.name} ({inst.class_name})",
                inst.id not in initial.removed_instances,
                cb_hook=changed,
                hint=f"instance id {inst.id}; untick to remove it",
            )
            for inst in self.instances
        ]
        self.on_pointer_mode: Callable[[str], None] = lambda mode: None
        self.on_clear: Callable[[], None] = lambda: None
        self.pointer_mode: ViewerDropdown | None = None
        self.readout_text = READY
        self._readout: GuiMarkdownHandle | None = None
        if pointer:
            modes = [ORBIT, INSPECT, PICK_CLASS] + ([PICK_INSTANCE, PICK_BOX] if self.instances else [])
            self.pointer_mode = ViewerDropdown(
                "Click in render",
                ORBIT,
                modes,
                cb_hook=lambda element: self.on_pointer_mode(element.value),
                hint="inspect: class, depth, position and motion of the clicked point, and its path through the "
                "video; toggle: untick/tick what is clicked (box: drag a box, every instance inside)",
            )
        self.clear_paths = ViewerButton("Clear paths", cb_hook=lambda _: self.on_clear())

    def _changed(self, _element: ViewerElement) -> None:
        self.cb_hook(self)

    def edit(self) -> SceneEdit:
        """The edit that the controls currently describe."""
        ticked = {i for i, box in enumerate(self.class_boxes) if box.value}
        every = set(range(len(self.class_boxes)))
        removed_instances = {
            inst.id for inst, box in zip(self.instances, self.instance_boxes, strict=True) if not box.value
        }
        if self.mode.value == HIGHLIGHT:
            highlighted = ticked if ticked != every else set()
            return SceneEdit(set(), removed_instances, highlighted, float(self.dim.value))
        return SceneEdit(every - ticked, removed_instances, set(), float(self.dim.value))

    def apply(self) -> None:
        """Hands the controls' edit to the model."""
        self._set_edit(self.edit())

    def reset(self) -> None:
        """Ticks every box and returns to removal mode (the unedited scene)."""
        self.mode.value = REMOVE
        for box in self.class_boxes + self.instance_boxes:
            box.value = True
        self.cb_hook(self)

    def toggle_class(self, class_id: int) -> bool:
        """Flips the class's tick box as a click on it would; returns whether it is ticked now."""
        box = self.class_boxes[class_id]
        box.value = not box.value
        self._applied_by_hand([box])
        return box.value

    def toggle_instances(self, instance_ids: Sequence[int]) -> list[tuple[str, bool]]:
        """Flips the tick boxes of the instances (ids without a box are skipped); returns (name, ticked) each."""
        boxes = {inst.id: (inst.name, box) for inst, box in zip(self.instances, self.instance_boxes, strict=True)}
        flipped = [boxes[i] for i in instance_ids if i in boxes]
        for _, box in flipped:
            box.value = not box.value
        self._applied_by_hand([box for _, box in flipped])
        return [(name, box.value) for name, box in flipped]

    def _applied_by_hand(self, boxes: list[ViewerCheckbox]) -> None:
        """Installed boxes call the panel hook themselves when their value changes; the others need a call."""
        if boxes and any(box.gui_handle is None for box in boxes):
            self.cb_hook(self)

    def show(self, text: str) -> None:
        """Puts ``text`` (markdown) in the "Inspect" folder."""
        self.readout_text = text
        if self._readout is not None:
            self._readout.content = text

    def controls(self) -> list[ViewerElement]:
        """The controls above the legend."""
        pointer = [self.pointer_mode] if self.pointer_mode is not None else []
        return [self.mode, self.dim, self.tick_all, *pointer]

    def _create_gui_handle(self, viser_server: ViserServer) -> None:
        self.gui_handle = viser_server.gui.add_folder(self.name)  # type: ignore[assignment]

    def install(self, viser_server: ViserServer) -> None:
        """Creates the "Semantic Flow" folder and installs the controls in it."""
        self._create_gui_handle(viser_server)
        assert self.gui_handle is not None
        with self.gui_handle:  # type: ignore[attr-defined]
            for element in self.controls():
                element.install(viser_server)
            if self.pointer_mode is not None:
                with viser_server.gui.add_folder("Inspect"):
                    self._readout = viser_server.gui.add_markdown(self.readout_text)
                    self.clear_paths.install(viser_server)
            groups: list[tuple[str, list[ViewerElement]]] = [
                ("Legend", list(self.legend)),
                ("Classes", list(self.class_boxes)),
                ("Instances", list(self.instance_boxes)),
            ]
            for title, elements in groups:
                if elements:
                    with viser_server.gui.add_folder(title):
                        for element in elements:
                            element.install(viser_server)


def build_panel(model: Model) -> SemanticFlowPanel:
    """The panel of a Semantic Flow model; also applies the edit in the model config.

    The config's ``remove_classes``, ``remove_instances`` and ``highlight_classes`` become the
    model's initial :class:`SceneEdit` (and the panel's initial state). Names the scene does not have
    are reported and ignored here; the command lines reject them before loading a model.
    """
    cfg: Any = model.config
    request = EditRequest(tuple(cfg.remove_classes), tuple(cfg.remove_instances), tuple(cfg.highlight_classes))
    instances = model.scene_info.instances  # type: ignore[attr-defined]
    try:
        edit = resolve_edit(request, model.class_names, instances)  # type: ignore[attr-defined]
    except EditError as err:
        CONSOLE.print(f"[bold yellow]Semantic Flow:[/bold yellow] ignoring the configured scene edit: {err}")
        edit = SceneEdit()
    model.edit = edit

    def set_edit(new: SceneEdit) -> None:
        model.edit = new

    return SemanticFlowPanel(model.class_names, model.class_colors, instances, edit, set_edit, pointer=True)  # type: ignore[attr-defined]


class MultiScenePanel(SemanticFlowPanel):
    """The panel of a multi-scene model: a "Scene" dropdown chooses the scene the viewer renders; the class
    controls apply to every scene and each scene's instances get checkboxes of their own ("scene: name").

    Args:
        scene_names: the scenes, in index order.
        initial_scene: index of the scene shown at start.
        choose_scene: called with the chosen scene's index.
        instances: every scene's instances.
        set_edits: called with the edit and, per scene, the ids of its removed instances.
    """

    def __init__(
        self,
        scene_names: Sequence[str],
        initial_scene: int,
        choose_scene: Callable[[int], None],
        class_names: Sequence[str],
        class_colors: Tensor,
        instances: Sequence[Sequence[InstanceInfo]],
        initial: SceneEdit,
        set_edits: Callable[[SceneEdit, list[set[int]]], None],
    ) -> None:
        self.scene_names = list(scene_names)
        self.instance_scenes = [index for index, own in enumerate(instances) for _ in own]
        labelled = [
            InstanceInfo(inst.id, inst.class_name, f"{scene}: {inst.name}")
            for scene, own in zip(scene_names, instances, strict=True)
            for inst in own
        ]
        super().__init__(class_names, class_colors, labelled, initial, lambda edit: set_edits(edit, self.removed()))
        self._choose_scene = choose_scene
        self.scene = ViewerDropdown(
            "Scene",
            self.scene_names[initial_scene],
            self.scene_names,
            cb_hook=self._changed,
            hint="the scene rendered in the viewer (the run holds several)",
        )

    def removed(self) -> list[set[int]]:
        """Per scene, the ids of its unticked instances."""
        removed: list[set[int]] = [set() for _ in self.scene_names]
        for scene, inst, box in zip(self.instance_scenes, self.instances, self.instance_boxes, strict=True):
            if not box.value:
                removed[scene].add(inst.id)
        return removed

    def apply(self) -> None:
        self._choose_scene(self.scene_names.index(self.scene.value))
        super().apply()

    def controls(self) -> list[ViewerElement]:
        return [self.scene, *super().controls()]


def build_multi_scene_panel(model: Model) -> MultiScenePanel:
    """The panel of a multi-scene model (its scene models keep the edits their configs ask for)."""
    scenes: Any = model.scene_models()  # type: ignore[operator]

    def choose(index: int) -> None:
        model.viewer_scene = index  # type: ignore[assignment]

    panel = MultiScenePanel(
        model.scene_names,  # type: ignore[arg-type]
        model.viewer_scene,  # type: ignore[arg-type]
        choose,
        scenes[0].class_names,
        scenes[0].class_colors,
        [scene.scene_info.instances for scene in scenes],
        scenes[0].edit,
        model.set_edit,  # type: ignore[arg-type]
    )
    for index, inst, box in zip(panel.instance_scenes, panel.instances, panel.instance_boxes, strict=True):
        box.value = inst.id not in scenes[index].edit.removed_instances
    return panel
