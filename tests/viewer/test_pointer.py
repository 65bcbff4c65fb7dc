"""The panel's pointer tools, driven without a browser: a click at a known pixel of a tiny model whose fields are
set by hand (so the answer is known exactly), the path drawn for it, picks, and training left alone."""

import socket
import threading
import time
from types import SimpleNamespace

import pytest
import torch
from model_helpers import tiny_pipeline
from nerfstudio.viewer.viewer_elements import ViewerClick
from viser import ViserServer

from semflow_ns.model_components.editing import SceneEdit
from semflow_ns.model_components.inspect import frame_camera, pixel_rays
from semflow_ns.viewer.panel import INSPECT, PICK_CLASS, PICK_INSTANCE
from semflow_ns.viewer.pointer import PointerTools

FLOW_BIAS = 0.2
"""Raw output of the scene-flow head along x (forward) and -x (backward): a constant motion."""
CLICK_TIME = 0.3
"""The time slider's time: between video frames 2 (t = 2/7) and 3 (t = 3/7) of the 8-frame tiny scene."""


@pytest.fixture(scope="module")
def server():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ViserServer(host="127.0.0.1", port=port, verbose=False)
    yield server
    server.stop()


def _set_last_layer(mlp, bias: dict[int, float], fill: float = 0.0) -> None:
    last = mlp.layers[-1]
    last.weight.zero_()
    last.bias.fill_(fill)
    for index, value in bias.items():
        last.bias[index] = value


@pytest.fixture(scope="module")
def tiny_model(tiny_scene):
    """One tiny model for the module; every test sets its fields by hand (:func:`hand_set`) and gets fresh tools."""
    _, pipeline = tiny_pipeline(tiny_scene)
    return pipeline.model


def hand_set(model, moving: bool):
    """Makes the answer known: an opaque object everywhere, either dynamic (class 4 "ball", instance 4 "rolling
    ball", blend 1, a constant scene flow along +x) or static (class 1, blend 0). Also clears the scene edit."""
    with torch.no_grad():
        _set_last_layer(model.dynamic.semantic_head.mlp, {4: 5.0, model.num_classes + 4: 5.0})
        _set_last_layer(model.static_semantic_head.mlp, {1: 5.0})
        model.dynamic.field.density_mlp.layers[-1].bias[0] = 30.0 if moving else -30.0
        model.static_field.density_mlp.layers[-1].bias[0] = -30.0 if moving else 30.0
        model.dynamic.field.blend_head.weight.zero_()
        model.dynamic.field.blend_head.bias.fill_(30.0 if moving else -30.0)
        head = model.dynamic.scene_flow.head
        head.weight.zero_()
        head.bias.zero_()
        head.bias[0], head.bias[3] = FLOW_BIAS, -FLOW_BIAS
    model.edit = SceneEdit()
    model.eval()
    return model


def attach(model, server, include_time: bool = True):
    """The model's pointer tools, set up with a stand-in for nerfstudio's viewer (a real viser server)."""
    panel = model.semantic_flow_panel
    panel.reset()
    tools = PointerTools(model, panel)
    viewer = SimpleNamespace(
        viser_server=server,
        control_panel=SimpleNamespace(time=CLICK_TIME),
        include_time=include_time,
        train_lock=threading.Lock(),
    )
    tools._setup(viewer)
    return tools, viewer


def click_at(model, frame: int, pixel: tuple[int, int]) -> ViewerClick:
    """The click nerfstudio's viewer reports for ``pixel`` of a video frame's view (world units)."""
    origins, directions = pixel_rays(frame_camera(model, frame), [pixel])
    return ViewerClick(tuple(origins[0].tolist()), tuple(directions[0].tolist()), (0.5, 0.5))


def test_a_click_on_a_moving_point_shows_it_and_draws_its_path_through_every_frame(tiny_model, server):
    model = hand_set(tiny_model, moving=True)
    tools, _ = attach(model, server)
    tools.set_mode(INSPECT)
    tools.click(click_at(model, 2, (16, 12)))
    (found,) = tools.inspections
    assert found.surface and found.class_name == model.class_names[4] and found.class_probability > 0.9
    assert found.moving and found.dynamic_share > 0.99 and found.time == pytest.approx(CLICK_TIME)
    assert "moving" in tools.panel.readout_text and model.class_names[4] in tools.panel.readout_text

    (paths,) = tools.paths
    frame_times = model.timeline.times
    assert paths.points.shape == (1, len(frame_times), 3)
    # a constant flow of d (normalised units) per frame: the path is the point moved by (t_i - t) / interval * d
    step = model.dynamic.scene_flow.config.max_displacement * torch.tanh(torch.tensor(FLOW_BIAS))
    interval = float(frame_times[1] - frame_times[0])
    offsets = (frame_times - CLICK_TIME) / interval * step * model.normalizer.half_size[0]
    expected = torch.tensor(found.point)[None].repeat(len(frame_times), 1)
    expected[:, 0] += offsets
    assert torch.allclose(paths.points[0], expected, atol=1e-4)

    (drawn,) = tools.layer.paths  # drawn in the viewer's scene, with the clicked moment among its vertices
    assert len(drawn.times) == len(frame_times) + 1
    assert drawn.at(CLICK_TIME) == pytest.approx(list(found.point), abs=1e-5)
    tools.viewer.control_panel.time = float(frame_times[-1])
    tools.follow_time()  # the time slider moved: the marker goes to the last frame's position
    assert tuple(drawn.marker.position) == pytest.approx((expected[-1] * 10.0).tolist(), abs=1e-3)
    assert tools.latency < 2.0

    tools.click(click_at(model, 5, (3, 20)))
    assert len(tools.layer.paths) == 2, "every click keeps its path"
    tools.clear()
    assert not tools.layer.paths and not tools.paths


def test_a_static_point_keeps_its_place_and_empty_space_has_no_point(tiny_model, server):
    model = hand_set(tiny_model, moving=False)
    tools, _ = attach(model, server)
    tools.set_mode(INSPECT)
    tools.click(click_at(model, 0, (5, 5)))
    (found,), (paths,) = tools.inspections, tools.paths
    assert found.class_name == model.class_names[1] and not found.moving and "static" in tools.panel.readout_text
    assert torch.allclose(paths.points[0], torch.tensor(found.point).expand(len(model.timeline.times), 3))

    with torch.no_grad():
        model.static_field.density_mlp.layers[-1].bias[0] = -30.0  # nothing anywhere: the sky
    tools.click(click_at(model, 0, (5, 5)))
    assert not tools.inspections[-1].surface and tools.paths[-1] is None
    assert "No surface" in tools.panel.readout_text
    assert len(tools.layer.paths) == 1, "no path is invented for empty space"


def test_a_click_picks_the_class_or_instance_under_the_cursor(tiny_model, server):
    model = hand_set(tiny_model, moving=True)
    tools, _ = attach(model, server)
    panel = tools.panel
    tools.set_mode(PICK_CLASS)
    tools.click(click_at(model, 1, (10, 10)))
    assert model.edit.removed_classes == {4}, "the clicked class is unticked: removed"
    panel.reset()
    tools.set_mode(PICK_INSTANCE)
    tools.click(click_at(model, 1, (10, 10)))
    assert model.edit.removed_instances == {4} and not model.edit.removed_classes
    assert "rolling ball" in panel.readout_text and not tools.inspections, "picks are not inspections"
    panel.reset()


def test_clicks_while_training_wait_for_the_lock_and_leave_training_unchanged(tiny_model, server):
    model = hand_set(tiny_model, moving=True)
    model.train()
    tools, viewer = attach(model, server)
    tools.set_mode(INSPECT)
    before = {name: value.detach().clone() for name, value in model.state_dict().items()}
    rng = torch.get_rng_state()
    viewer.train_lock.acquire()  # a training step is running
    worker = threading.Thread(target=tools.click, args=(click_at(model, 3, (16, 12)),))
    worker.start()
    time.sleep(0.5)
    assert worker.is_alive() and not tools.inspections, "the click waits for the training step"
    viewer.train_lock.release()
    worker.join(timeout=30)
    assert tools.inspections and tools.inspections[0].surface
    assert model.training, "training mode is restored"
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[name], value) for name, value in model.state_dict().items())
    assert torch.equal(rng, torch.get_rng_state()), "the training's random draws are not disturbed"
    model.eval()
