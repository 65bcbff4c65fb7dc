"""Pointing at the render in nerfstudio's viewer on a trained run: nerfstudio sets the pointer tools up, routes
viser's pointer events to them (clicks and box selections, as nerfstudio wraps them), and one click is made
by headless Chromium in the real page."""

import json
import shutil
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from nerfstudio.utils.eval_utils import eval_setup
from nerfstudio.viewer.viewer import VISER_NERFSTUDIO_SCALE_RATIO, Viewer
from viser import ScenePointerEvent

from semflow_ns.data.format import load_scene
from semflow_ns.data.format.frame_files import read_label_image
from semflow_ns.model_components.inspect import frame_camera, inspect_rays, pixel_rays, querying
from semflow_ns.scripts import export as semflow_export
from semflow_ns.viewer.panel import INSPECT, ORBIT, PICK_BOX
from semflow_ns.viewer.pointer import PointerTools
from semflow_ns.viewer.session import camera_state, point_client_camera, start_viewer, viewer_url

pytestmark = pytest.mark.slow
BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(condition: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.time() + seconds
    while not condition():
        assert time.time() < deadline, "the viewer callback did not run"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def viewer(trained_run) -> Iterator[Viewer]:
    config, pipeline, _, step = eval_setup(trained_run, test_mode="test")
    viewer = start_viewer(config, pipeline, step, port=_free_port())
    viewer.control_panel._max_res.value = 64
    yield viewer
    viewer.viser_server.stop()


def _tools(viewer: Viewer) -> PointerTools:
    (tools,) = [c for c in viewer.viewer_controls if isinstance(c, PointerTools)]
    return tools


def _set_mode(viewer: Viewer, mode: str) -> PointerTools:
    tools = _tools(viewer)
    tools.panel.pointer_mode.value = mode  # as chosen in the browser: viser runs the dropdown's callback
    _wait_for(lambda: tools.mode == mode)
    return tools


def _agreeing_pixel(model, tiny_scene: Path, frame: int) -> tuple[tuple[int, int], int]:
    """A pixel of ``frame`` whose rendered class is its true class, a moving class if there is one."""
    labels = torch.from_numpy(read_label_image(load_scene(tiny_scene).frames[frame].semantics))
    predicted = model.get_outputs_for_camera(frame_camera(model, frame))["semantics"].argmax(-1)
    agree = predicted == labels
    moving = agree & torch.isin(labels, torch.tensor(model.scene_info.dynamic_class_ids))
    rows, cols = torch.nonzero(moving if moving.any() else agree, as_tuple=True)
    assert len(rows), "the tiny model predicts no pixel of the frame right"
    return (int(cols[0]), int(rows[0])), int(labels[rows[0], cols[0]])


def test_nerfstudio_routes_a_click_to_the_inspector_at_the_slider_time(viewer, tiny_scene):
    model, tools = viewer.pipeline.model, _set_mode(viewer, INSPECT)
    assert viewer.viser_server.scene._scene_pointer_event_type == "click"
    frame = 5
    pixel, label = _agreeing_pixel(model, tiny_scene, frame)
    viewer.control_panel._time.value = float(model.timeline.times[frame])
    origins, directions = pixel_rays(frame_camera(model, frame), [pixel])
    event = ScenePointerEvent(
        client=None,  # type: ignore[arg-type]
        client_id=0,
        event_type="click",
        ray_origin=tuple((origins[0] * VISER_NERFSTUDIO_SCALE_RATIO).tolist()),  # viser's scene is scaled
        ray_direction=tuple(directions[0].tolist()),
        screen_pos=((0.5, 0.5),),
    )
    viewer.viser_server.scene._scene_pointer_cb(event)  # what viser calls for the browser's click
    found, paths = tools.inspections[-1], tools.paths[-1]
    assert found.class_id == label and found.time == pytest.approx(float(model.timeline.times[frame]))
    assert found.surface and paths is not None
    assert paths.points.shape == (1, len(model.timeline.times), 3)
    assert torch.allclose(paths.points[0, frame], torch.tensor(found.point), atol=1e-5)
    assert found.describe().split("**")[1] in tools.panel.readout_text
    assert tools.latency < 2.0
    drawn = tools.layer.paths[-1]
    viewer.control_panel._time.value = 0.0  # the marker follows the time slider
    start = (paths.points[0, 0] * VISER_NERFSTUDIO_SCALE_RATIO).tolist()
    _wait_for(lambda: tuple(drawn.marker.position) == pytest.approx(start, abs=1e-3))
    tools.panel.clear_paths.cb_hook(tools.panel.clear_paths)  # what the "Clear paths" button calls
    assert not tools.layer.paths


def test_a_box_selection_toggles_the_instances_inside_it(viewer, monkeypatch):
    model, tools = viewer.pipeline.model, _set_mode(viewer, PICK_BOX)
    assert viewer.viser_server.scene._scene_pointer_event_type == "rect-select"
    frame = 2
    viewer.control_panel._time.value = float(model.timeline.times[frame])
    camera = frame_camera(model, frame)
    monkeypatch.setattr(tools, "get_camera", lambda height, width, client_id=None: camera)  # the browser's view
    event = ScenePointerEvent(None, 0, "rect-select", None, None, ((0.0, 0.0), (1.0, 1.0)))  # type: ignore[arg-type]
    viewer.viser_server.scene._scene_pointer_cb(event)
    _wait_for(lambda: bool(model.edit.removed_instances))
    ids = {inst.id for inst in model.scene_info.instances}
    assert model.edit.removed_instances <= ids and "Box:" in tools.panel.readout_text
    tools.panel.reset()
    _wait_for(lambda: not model.edit.removes)
    _set_mode(viewer, ORBIT)
    assert viewer.viser_server.scene._scene_pointer_cb is None, "orbiting again: no pointer callback"


def test_semflow_export_trajectories_writes_json_and_ply(trained_run, tmp_path, capsys):
    output = tmp_path / "paths.json"
    args = ["trajectories", "--load-config", str(trained_run), "--frame", "3", "--output-path", str(output)]
    with pytest.raises(SystemExit) as done:
        semflow_export.entrypoint([*args, "--pixels", "16,12", "0,23"])  # what `semflow-export trajectories` runs
    assert done.value.code == 0
    report = json.loads(output.read_text())
    assert report["frame"] == 3 and [p["pixel"] for p in report["points"]] == [[16, 12], [0, 23]]
    for point in report["points"]:
        assert point["surface"], "the demo room is closed: every ray hits a surface"
        assert [step["frame"] for step in point["trajectory"]] == list(range(8))
        assert point["trajectory"][3]["xyz"] == pytest.approx(point["xyz"], abs=1e-5), "it passes the clicked point"
        assert {"class", "class_probability", "instance", "depth", "dynamic_share", "moving"} <= set(point)
    ply = (tmp_path / "paths.ply").read_text().splitlines()
    assert "element vertex 16" in ply and "element edge 14" in ply
    with pytest.raises(SystemExit) as bad:
        semflow_export.entrypoint([*args, "--pixels", "99,1"])
    assert bad.value.code == 1 and "outside the 32x24 image" in capsys.readouterr().out


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium (README install line)")
def test_a_click_in_the_browser_inspects_the_point_at_the_centre_of_the_view(viewer):
    sys.path.insert(0, str(BENCHMARKS))
    from make_figures import CANVAS_CENTRE, Chromium

    model, tools = viewer.pipeline.model, _set_mode(viewer, INSPECT)
    frame = 4
    viewer.control_panel._time.value = float(model.timeline.times[frame])
    camera = frame_camera(model, frame)
    state = camera_state(camera, 0)
    count = len(tools.inspections)
    browser = Chromium("chromium", (900, 700))
    try:
        browser.call("Page.navigate", url=viewer_url(viewer))
        _wait_for(lambda: bool(viewer.viser_server.get_clients()), 60.0)
        (client,) = viewer.viser_server.get_clients().values()
        _wait_for(lambda: bool(viewer.render_statemachines[client.client_id].output_keys), 120.0)
        moved: list[int] = []
        client.camera.on_update(lambda _: moved.append(1))
        centre = camera.camera_to_worlds[0, :3, 3] - camera.camera_to_worlds[0, :3, 2]
        point_client_camera(client, state, centre)
        target = state.c2w[:3, 3].numpy() * VISER_NERFSTUDIO_SCALE_RATIO
        _wait_for(lambda: bool(moved) and np.allclose(client.camera.position, target, atol=1e-2), 30.0)
        time.sleep(1.0)  # the browser's camera settles
        view = viewer.get_camera_state(client).c2w.float()  # the browser's camera, as the viewer renders it
        x, y = json.loads(browser.call("Runtime.evaluate", expression=CANVAS_CENTRE)["result"]["value"])
        for kind in ("mousePressed", "mouseReleased"):
            browser.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)
        _wait_for(lambda: len(tools.inspections) > count, 60.0)
    finally:
        browser.close()
    found = tools.inspections[-1]
    assert tools.last_click is not None and tools.last_click.screen_pos == pytest.approx((0.5, 0.5), abs=0.01)
    origin, axis = view[:3, 3], -view[:3, 2]  # the centre of the view: the camera's optical axis
    offset = torch.tensor(found.point) - origin
    assert torch.linalg.norm(torch.linalg.cross(offset, axis)) < 0.03 * torch.linalg.norm(offset), "on the axis"
    # the same query along the ray through the inspected point (within a pixel of the axis, where the tiny model's
    # two most likely classes can be nearly tied) gives the same point
    with querying(model):
        (expected,) = inspect_rays(model, origin[None], (offset / torch.linalg.norm(offset))[None], found.time)
    assert found.depth == pytest.approx(expected.depth, rel=0.1) and found.class_id == expected.class_id
    assert len(tools.layer.paths[-1].times) >= len(model.timeline.times)
