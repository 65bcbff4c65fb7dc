"""README pictures of a trained Semantic Flow run: rendered frames and a screenshot of the viewer.

    python benchmarks/make_figures.py --load-config outputs/demo/semantic-flow/<run>/config.yml

writes into --output-dir (default /tmp/figures):

- ``frames.png``: a few video frames, each row ``rgb | semantics | <classes> removed``, rendered at the
  training cameras and times;
- ``viewer_semantics.png``: nerfstudio's viewer (headless Chromium) showing the ``semantics_colormap``
  output with the "Semantic Flow" panel in view;
- ``viewer_removed.png``: the viewer showing ``rgb`` after unticking the removed classes in the panel;
- ``viewer_paths.png``: the viewer after inspecting a point on each moving object ("Click in render":
  inspect point + path): their paths through the video, coloured by time, drawn over the render ("Composite
  depth" off), seen from a little behind the middle frame's camera.

The screenshot needs Debian's ``chromium`` (``apt-get install -y chromium``); it is driven over the
DevTools protocol so that the picture is taken once the viewer has rendered the chosen output.
"""

import base64
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import tyro
from nerfstudio.utils.eval_utils import eval_setup
from PIL import Image, ImageDraw, ImageFont
from websockets.sync.client import connect

from semflow_ns.data.format import load_scene
from semflow_ns.model_components.edit_names import EditRequest, resolve_edit
from semflow_ns.model_components.editing import SceneEdit
from semflow_ns.utils.camera_paths import look_at_point
from semflow_ns.viewer.panel import SemanticFlowPanel
from semflow_ns.viewer.session import camera_state, point_client_camera, start_viewer, viewer_url


@dataclass
class Args:
    load_config: Path
    """config.yml of a trained semantic-flow run."""
    output_dir: Path = Path("/tmp/figures")
    """Where the PNGs go."""
    remove_classes: tuple[str, ...] = ("ball",)
    """Classes removed in the third column and in the second screenshot."""
    num_frames: int = 3
    """Video frames shown (evenly spread over the video)."""
    panel_height: int = 192
    """Height of each picture in frames.png (nearest-neighbour upscaling of the renders)."""
    screenshot: bool = True
    """Also take the viewer screenshots."""
    chromium: str = "chromium"
    """Chromium executable."""
    window: tuple[int, int] = (1400, 1000)
    """Browser window size (width, height)."""
    max_res: int = 160
    """The viewer's "Max res" (rendered image height); renders on the CPU are slow."""
    timeout: float = 900.0
    """Seconds to wait for the viewer's render before giving up."""


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while not condition():
        if time.time() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        time.sleep(0.2)


def to_image(tensor: torch.Tensor, height: int) -> Image.Image:
    """An [H, W, 3] float image in [0, 1] as a PIL image of the given height (nearest neighbour)."""
    array = (tensor.clamp(0.0, 1.0).cpu().numpy() * 255.0).round().astype(np.uint8)
    image = Image.fromarray(array)
    return image.resize((round(image.width * height / image.height), height), Image.Resampling.NEAREST)


def labelled_row(images: list[Image.Image], labels: list[str]) -> Image.Image:
    """Pictures side by side, each with its label above it."""
    font = ImageFont.load_default(size=18)
    gap, header = 6, 28
    width = sum(i.width for i in images) + gap * (len(images) - 1)
    row = Image.new("RGB", (width, images[0].height + header), "white")
    draw = ImageDraw.Draw(row)
    x = 0
    for image, label in zip(images, labels, strict=True):
        row.paste(image, (x, header))
        draw.text((x + 4, 4), label, fill="black", font=font)
        x += image.width + gap
    return row


def render_frames(args: Args, pipeline, removal: SceneEdit) -> list[Image.Image]:
    """One row per chosen video frame: rgb | semantics | rgb with ``removal`` applied."""
    model = pipeline.model
    cameras = model.kwargs["metadata"]["semflow_video"].cameras
    frames = np.linspace(0, len(cameras) - 1, args.num_frames).round().astype(int)
    labels = ["rgb", "semantics", f"{', '.join(args.remove_classes)} removed"]
    rows = []
    for index in frames:
        camera = cameras[int(index) : int(index) + 1]
        model.edit = SceneEdit()
        plain = model.get_outputs_for_camera(camera)
        model.edit = removal
        edited = model.get_outputs_for_camera(camera)
        model.edit = SceneEdit()
        pictures = [plain["rgb"], plain["semantics_colormap"], edited["rgb"]]
        rows.append(labelled_row([to_image(p, args.panel_height) for p in pictures], labels))
    return rows


def stack(rows: list[Image.Image]) -> Image.Image:
    out = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows)), "white")
    y = 0
    for row in rows:
        out.paste(row, (0, y))
        y += row.height
    return out


class Chromium:
    """Headless Chromium, driven over the DevTools protocol (navigate, run JavaScript, screenshot), with a
    throwaway profile folder that :meth:`close` removes."""

    def __init__(self, binary: str, window: tuple[int, int]) -> None:
        self.profile = tempfile.TemporaryDirectory(ignore_cleanup_errors=True)
        profile = self.profile.name
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        flags = "--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking"
        flags += " --disable-component-update --disable-sync --enable-unsafe-swiftshader --remote-allow-origins=*"
        command = [binary, *flags.split(), f"--user-data-dir={profile}", f"--window-size={window[0]},{window[1]}"]
        self.process = subprocess.Popen(
            [*command, f"--remote-debugging-port={port}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its helper processes form one group that close() ends together
        )
        self.calls = 0
        deadline = time.time() + 30.0
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as response:
                    pages = [t for t in json.loads(response.read()) if t["type"] == "page"]
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.3)
        self.socket = connect(pages[0]["webSocketDebuggerUrl"], max_size=None)

    def call(self, method: str, **params) -> dict:
        self.calls += 1
        self.socket.send(json.dumps({"id": self.calls, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.calls:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def screenshot(self, path: Path) -> None:
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))

    def close(self) -> None:
        """Ends the browser and every helper process it started, then removes its profile folder."""
        self.socket.close()
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        for _ in range(50):  # helpers outlive the main process for a moment
            try:
                os.killpg(self.process.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        self.profile.cleanup()


REVEAL_PANEL = """
document.evaluate("//*[normalize-space(text())='Semantic Flow']", document, null,
  XPathResult.FIRST_ORDERED_NODE_TYPE, null).singleNodeValue?.scrollIntoView({block: 'start'});
"""
"""Scrolls the viewer's control panel so that the "Semantic Flow" folder is at its top."""
REVEAL_INSPECT = REVEAL_PANEL.replace("Semantic Flow", "Click in render")
"""Scrolls the control panel to the pointer controls and the "Inspect" readout."""
CANVAS_CENTRE = """
JSON.stringify((() => { const r = (document.querySelector('canvas[data-engine]') ||
  document.querySelector('canvas')).getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })())
"""
"""Page coordinates of the centre of the viewer's 3D view (the canvas three.js draws into)."""


def render_in_browser(viewer, machine, output: str, args: Args) -> None:
    """Selects ``output`` in the viewer and waits until a full-resolution frame of it reached the browser."""
    sent: list[tuple[str, str]] = []
    send = machine._send_output_to_viewer

    def record(outputs, static_render=True):
        send(outputs, static_render)
        sent.append((machine.state, viewer.control_panel.output_render))

    machine._send_output_to_viewer = record
    viewer.control_panel._output_render.value = output
    viewer._trigger_rerender()
    wait_for(lambda: ("high", output) in sent, args.timeout, f"the viewer to render {output}")
    machine._send_output_to_viewer = send
    time.sleep(3.0)  # the browser decodes and draws the frame


def screenshot_viewer(args: Args, config, pipeline, step: int, removal: SceneEdit) -> None:
    """The viewer screenshots (semantics with the panel; rgb with the classes unticked; the paths)."""
    config.viewer.image_format = "png"  # sharp class boundaries (the default jpeg blurs them)
    viewer = start_viewer(config, pipeline, step)
    viewer.control_panel._max_res.value = args.max_res
    viewer.set_camera_visibility(False)  # the training-image frustums would cover a view from a training camera
    viewer.toggle_cameravis_button()
    cameras = pipeline.model.kwargs["metadata"]["semflow_video"].cameras
    middle = len(cameras) // 2
    viewer.control_panel._time.value = float(cameras.times[middle, 0])
    poses = np.tile(np.eye(4), (len(cameras), 1, 1))
    poses[:, :3] = cameras.camera_to_worlds.numpy()
    centre = torch.from_numpy(look_at_point(poses, pipeline.model.scene_box.aabb.mean(0).numpy().astype(float)))
    browser = Chromium(args.chromium, args.window)
    try:
        browser.call("Page.navigate", url=viewer_url(viewer))
        wait_for(lambda: bool(viewer.viser_server.get_clients()), 60.0, "the browser to connect")
        (client,) = viewer.viser_server.get_clients().values()
        point_client_camera(client, camera_state(cameras, middle), centre)
        machine = viewer.render_statemachines[client.client_id]
        wait_for(lambda: "semantics_colormap" in machine.output_keys, args.timeout, "the first render")
        render_in_browser(viewer, machine, "semantics_colormap", args)
        browser.call("Runtime.evaluate", expression=REVEAL_PANEL)
        time.sleep(1.0)
        browser.screenshot(args.output_dir / "viewer_semantics.png")
        (panel,) = [e for _, e in viewer.viewer_elements if isinstance(e, SemanticFlowPanel)]
        for class_id in removal.removed_classes:
            panel.class_boxes[class_id].value = False
        render_in_browser(viewer, machine, "rgb", args)
        browser.call("Runtime.evaluate", expression=REVEAL_PANEL)
        time.sleep(1.0)
        browser.screenshot(args.output_dir / "viewer_removed.png")
        screenshot_paths(args, viewer, browser, client, machine)
    finally:
        browser.close()
        viewer.viser_server.stop()


def inspect_moving_objects(pipeline, frame: int) -> int:
    """Inspects, as clicks in the viewer at ``frame``'s view and time, the pixel nearest the middle of each moving
    object (from the frame's instance labels); returns how many paths were drawn."""
    from semflow_ns.data.format.frame_files import read_label_image
    from semflow_ns.model_components.inspect import frame_camera, pixel_rays

    model = pipeline.model
    video = model.kwargs["metadata"]["semflow_video"]
    scene = load_scene(Path(video.image_filenames[0]).parent.parent)
    labels = read_label_image(scene.frames[frame].instances)
    dynamic = {c.name for c in scene.classes if c.dynamic}
    camera = frame_camera(model, frame)
    for instance in [i for i in scene.instances if i.class_name in dynamic]:
        rows, cols = np.nonzero(labels == instance.id)
        if len(rows) == 0:
            continue
        middle = int(np.argmin((rows - rows.mean()) ** 2 + (cols - cols.mean()) ** 2))
        origins, directions = pixel_rays(camera, [(int(cols[middle]), int(rows[middle]))])
        model.semantic_flow_pointer.inspect(origins, directions)
    return len(model.semantic_flow_pointer.layer.paths)


def screenshot_paths(args: Args, viewer, browser: Chromium, client, machine) -> None:
    """The viewer with the paths of a point on each moving object, seen from behind the middle frame's camera."""
    from semflow_ns.viewer.panel import INSPECT

    model = viewer.pipeline.model
    model.semantic_flow_panel.reset()  # the removal of the previous screenshot
    wait_for(lambda: not model.edit.removes, 10.0, "the unedited scene")
    cameras = model.kwargs["metadata"]["semflow_video"].cameras
    middle = len(cameras) // 2
    model.semantic_flow_panel.pointer_mode.value = INSPECT
    wait_for(lambda: model.semantic_flow_pointer.mode == INSPECT, 10.0, "inspect mode")
    drawn = inspect_moving_objects(viewer.pipeline, middle)
    viewer.control_panel._layer_depth.value = False  # draw the paths over the render, also where objects hide them
    state = camera_state(cameras, middle)
    back = state.c2w[:3, 2] * 0.6  # the middle frame's camera, moved back along its axis
    state.c2w = torch.cat([state.c2w[:3, :3], state.c2w[:3, 3:] + back[:, None]], dim=1)
    point_client_camera(client, state, state.c2w[:3, 3] - state.c2w[:3, 2])
    render_in_browser(viewer, machine, "rgb", args)
    browser.call("Runtime.evaluate", expression=REVEAL_INSPECT)
    time.sleep(1.0)
    browser.screenshot(args.output_dir / "viewer_paths.png")
    print(f"wrote {args.output_dir / 'viewer_paths.png'} ({drawn} paths)")


def main(args: Args) -> None:
    args.output_dir.mkdir(parents=True, exist_ok=True)
    config, pipeline, _, step = eval_setup(args.load_config, test_mode="test")
    model = pipeline.model
    removal = resolve_edit(
        EditRequest(remove_classes=args.remove_classes), model.class_names, model.scene_info.instances
    )
    stack(render_frames(args, pipeline, removal)).save(args.output_dir / "frames.png")
    print(f"wrote {args.output_dir / 'frames.png'}")
    if args.screenshot:
        screenshot_viewer(args, config, pipeline, step, removal)
        print(f"wrote {args.output_dir / 'viewer_semantics.png'} and viewer_removed.png")


if __name__ == "__main__":
    main(tyro.cli(Args))
