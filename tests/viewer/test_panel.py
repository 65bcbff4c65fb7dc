"""The "Semantic Flow" viewer panel: what its controls mean, and that nerfstudio finds and wires it."""

import socket
import time

import pytest
import torch
from nerfstudio.viewer.utils import parse_object
from nerfstudio.viewer.viewer_elements import ViewerElement
from torch import nn
from viser import ViserServer

from semflow_ns.data.format import InstanceInfo
from semflow_ns.model_components.editing import SceneEdit
from semflow_ns.viewer.panel import HIGHLIGHT, SemanticFlowPanel

CLASSES = ["floor", "wall", "ball"]
COLORS = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 1.0]])
INSTANCES = [InstanceInfo(4, "ball", "rolling ball"), InstanceInfo(5, "ball", "bouncing ball")]


def make_panel(initial: SceneEdit | None = None) -> tuple[SemanticFlowPanel, list[SceneEdit]]:
    edits: list[SceneEdit] = []
    return SemanticFlowPanel(CLASSES, COLORS, INSTANCES, initial or SceneEdit(), edits.append), edits


def test_unticked_classes_and_instances_are_removed():
    panel, edits = make_panel()
    panel.class_boxes[2].value = False
    panel.instance_boxes[1].value = False
    panel.cb_hook(panel)  # what every control calls
    assert edits[-1] == SceneEdit(removed_classes={2}, removed_instances={5})


def test_highlight_mode_highlights_the_ticked_classes_only_when_some_are_unticked():
    panel, edits = make_panel()
    panel.mode.value = HIGHLIGHT
    panel.dim.value = 0.4
    panel.cb_hook(panel)
    assert edits[-1] == SceneEdit(dim=0.4), "everything ticked: nothing to dim"
    panel.class_boxes[0].value = False
    panel.class_boxes[1].value = False
    panel.cb_hook(panel)
    assert edits[-1] == SceneEdit(highlighted_classes={2}, dim=0.4)


def test_the_panel_starts_from_the_configured_edit_and_tick_all_resets_it():
    panel, edits = make_panel(SceneEdit(removed_classes={1}, removed_instances={4}))
    assert [b.value for b in panel.class_boxes] == [True, False, True]
    assert [b.value for b in panel.instance_boxes] == [False, True]
    assert panel.edit() == SceneEdit(removed_classes={1}, removed_instances={4})
    panel.reset()
    assert edits[-1] == SceneEdit()
    highlighted, _ = make_panel(SceneEdit(highlighted_classes={0}))
    assert highlighted.mode.value == HIGHLIGHT and [b.value for b in highlighted.class_boxes] == [True, False, False]


def test_the_legend_shows_the_class_colours():
    panel, _ = make_panel()
    assert [(s.name, s.value, s.disabled) for s in panel.legend] == [
        ("floor", (255, 0, 0), True),
        ("wall", (0, 128, 0), True),
        ("ball", (0, 0, 255), True),
    ]


def test_nerfstudio_finds_the_panel_on_the_model():
    panel, _ = make_panel()
    model, pipeline = nn.Module(), nn.Module()
    model.semantic_flow_panel = panel
    pipeline.model = model
    assert parse_object(pipeline, ViewerElement, "Custom Elements") == [
        ("Custom Elements/model/semantic_flow_panel", panel)
    ]


@pytest.fixture
def server():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ViserServer(host="127.0.0.1", port=port, verbose=False)
    yield server
    server.stop()


def test_installed_controls_call_the_panel_hook(server):
    panel, edits = make_panel()
    panel.install(server)
    assert all(e.gui_handle is not None for e in [panel.mode, *panel.legend, *panel.class_boxes, *panel.instance_boxes])
    panel.class_boxes[1].gui_handle.value = False  # as a click in the browser: viser runs the callbacks
    deadline = time.time() + 5.0
    while not edits and time.time() < deadline:
        time.sleep(0.02)
    assert edits and edits[-1].removed_classes == {1}
