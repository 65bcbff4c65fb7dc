"""nerfstudio's viewer on a trained run: the "Semantic Flow" panel edits what the viewer renders.

The viewer is set up as `ns-viewer --load-config` does; frames are rendered through the viewer's own
render path (``RenderStateMachine._render_img``: control-panel time, the model's outputs), and the
panel is used through its checkboxes, whose callbacks the viewer has wired up.
"""

import socket
import time
from collections.abc import Callable, Iterator

import pytest
import torch
from nerfstudio.utils.eval_utils import eval_setup
from nerfstudio.viewer.viewer import Viewer

from semflow_ns.viewer.panel import HIGHLIGHT, REMOVE, SemanticFlowPanel
from semflow_ns.viewer.session import camera_state, render_view, start_viewer

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    """Waits for a viewer callback (viser runs them on its own threads)."""
    deadline = time.time() + seconds
    while not condition():
        assert time.time() < deadline, "the viewer callback did not run"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def viewer(trained_run) -> Iterator[Viewer]:
    config, pipeline, _, step = eval_setup(trained_run, test_mode="test")
    viewer = start_viewer(config, pipeline, step, port=_free_port())
    viewer.control_panel._max_res.value = 64  # the viewer's smallest resolution setting
    rerenders: list[float] = []
    viewer._trigger_rerender = lambda: rerenders.append(time.time())  # type: ignore[method-assign]
    viewer.rerenders = rerenders  # type: ignore[attr-defined]
    yield viewer
    viewer.viser_server.stop()


def _panel(viewer: Viewer) -> SemanticFlowPanel:
    (panel,) = [e for _, e in viewer.viewer_elements if isinstance(e, SemanticFlowPanel)]
    return panel


def _first_view(viewer: Viewer, frame: int = 0):
    cameras = viewer.pipeline.datamanager.train_dataset.cameras
    viewer.control_panel._time.value = float(cameras.times[frame, 0])
    return camera_state(cameras, frame)


def _set(viewer: Viewer, element, value) -> None:
    """Sets a control as a user would and waits for the model to see the change."""
    viewer.rerenders.clear()
    element.value = value
    _wait_for(lambda: bool(viewer.rerenders))


def test_the_panel_is_installed_with_legend_and_checkboxes(viewer):
    paths = [path for path, element in viewer.viewer_elements if isinstance(element, SemanticFlowPanel)]
    assert paths == ["Custom Elements/model/semantic_flow_panel"]
    panel = _panel(viewer)
    model = viewer.pipeline.model
    assert [box.name for box in panel.class_boxes] == model.class_names
    assert [swatch.value for swatch in panel.legend] == [
        tuple(round(float(c) * 255) for c in color) for color in model.class_colors
    ]
    assert len(panel.instance_boxes) == len(model.scene_info.instances) > 0
    assert all(e.gui_handle is not None for e in panel.class_boxes + panel.instance_boxes + panel.legend)


def test_unticking_a_class_removes_it_and_shows_what_was_behind(viewer):
    model, panel, state = viewer.pipeline.model, _panel(viewer), _first_view(viewer)
    before = render_view(viewer, state)
    predicted = before["semantics"].argmax(-1)
    counts = torch.bincount(predicted.flatten(), minlength=len(model.class_names))
    counts[0] = 0  # removing class 0 could not change the argmax of an emptied ray (all-zero logits)
    dynamic = model.scene_info.dynamic_class_ids
    removed = max(dynamic, key=lambda c: counts[c]) if counts[dynamic].max() >= 20 else int(counts.argmax())
    assert counts[removed] >= 20, f"the tiny model predicts too few pixels of any class: {counts.tolist()}"

    _set(viewer, panel.class_boxes[removed], False)
    assert model.edit.removed_classes == {removed}
    after = render_view(viewer, state)
    _set(viewer, panel.class_boxes[removed], True)
    assert not model.edit.removes

    mask = predicted == removed
    assert (after["semantics"].argmax(-1)[mask] != removed).float().mean() > 0.9
    # what shows instead: the scene behind, nothing, or (a dynamic class) the static scene where the object was;
    # exactly what is revealed is the model's business (test_model.py), the viewer must show some of it
    deeper = after["depth"][mask] > before["depth"][mask] + 1e-3
    emptier = after["accumulation"][mask] < before["accumulation"][mask] - 1e-3
    less_dynamic = after["dynamic_mask"][mask] < before["dynamic_mask"][mask] - 1e-3
    revealed = (deeper | emptier | less_dynamic).float().mean()
    assert revealed > 0.9, "the removed pixels should show what lies behind (or nothing)"
    change = (after["rgb"] - before["rgb"]).abs().sum(-1)
    assert change[mask].mean() > 0.02
    assert change[mask].mean() > 3 * change[~mask].mean()


def test_highlight_mode_dims_the_other_classes(viewer):
    panel, state = _panel(viewer), _first_view(viewer)
    before = render_view(viewer, state)
    predicted = before["semantics"].argmax(-1)
    kept = int(torch.mode(predicted.flatten()).values)
    _set(viewer, panel.mode, HIGHLIGHT)
    for i, box in enumerate(panel.class_boxes):
        if i != kept:
            _set(viewer, box, False)
    assert viewer.pipeline.model.edit.highlighted_classes == {kept}
    after = render_view(viewer, state)
    panel.reset()
    _wait_for(lambda: panel.mode.value == REMOVE and not viewer.pipeline.model.edit.highlighted_classes)

    others = predicted != kept
    assert after["rgb"][others].mean() < 0.6 * before["rgb"][others].mean()
    assert torch.allclose(after["semantics"], before["semantics"])


def test_the_time_slider_drives_every_output(viewer):
    state = _first_view(viewer)
    viewer.control_panel._time.value = 0.0
    start = render_view(viewer, state)
    viewer.control_panel._time.value = 1.0
    end = render_view(viewer, state)
    for name in ("rgb", "semantics", "semantics_colormap", "rgb_dynamic", "dynamic_mask", "optical_flow", "depth"):
        assert not torch.allclose(start[name], end[name]), f"{name} does not change with the time slider"
