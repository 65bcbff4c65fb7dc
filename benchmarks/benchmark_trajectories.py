"""How well the path of a clicked point follows the object it lies on, on the demo (whose true motion is known).

For some video frames of a trained demo run, pixels on the moving objects are picked from the ground-truth
instance labels (away from the objects' outlines). Each pixel is inspected as a click in the viewer does
(``semflow_ns.model_components.inspect``: its ray at the frame's time and pose) and its path through the whole
video is integrated from the scene flow (``semflow_ns.model_components.trajectories``). The demo's generator
traces the same ray in the true scene: the surface point hit is carried with its object to every frame time.
Per object (mean over its clicks), relative to the object's size (its largest extent: a ball's diameter, the
cube's side):

- ``path error``: mean 3D distance over the video between the predicted path and the true path of the point
  the ray really hits (includes the depth error at the click);
- ``flow error``: the same against the true path of the *predicted* clicked point carried with the object
  (the scene flow's part alone);
- ``start error``: the distance at the clicked frame (the depth/geometry part);
- ``image error``: mean distance over the video between the predicted and the true path seen by the training
  camera of each frame, relative to the object's apparent size there (what the optical-flow loss constrains;
  a monocular video leaves the depth direction to the fields' geometry);
- ``within k``: the path error over the frames at most k frames from the clicked one (how it grows with time);
- ``travel``: the length of the predicted path over the true length of the predicted point's path (median; 1 when
  the scene flow moves the point as far as the object moves it, whatever the direction);
- ``spread``: how deep the surface under the click is: the standard deviation of the sample depths along the
  clicked ray under the blended rendering weights, relative to the object's size (a solid surface gives about
  the sample spacing; a cloud smeared along the ray, much more);
- ``moving``: the share of clicks the model calls moving (the others keep a constant path).

A second table checks the geometry under the clicks against every body, moving or not: over whole frames (every
4th video frame, each pixel's ray), the signed error of the rendered depth along the ray against the distance to
the true surface, per body (median, and the median of its absolute value relative to the true distance), and the
spread of the weights along those rays (median, metres; as ``spread`` above). When
the still walls and crates are as far off as the balls, the start error is the fields' geometry, not their
motion.

``--viewer-clicks N`` also measures the latency in nerfstudio's viewer: the viewer at its default "Max res",
headless Chromium clicking the render while the viewer renders at full resolution (the worst case), from the
browser's mouse event to the answer in the panel.

    python benchmarks/benchmark_trajectories.py --load-config outputs/demo/semantic-flow/<run>/config.yml \\
        --output benchmarks/results_trajectories_cpu.json
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import tyro
from nerfstudio.utils.eval_utils import eval_setup
from rich.console import Console
from rich.table import Table
from scipy.ndimage import binary_erosion

from semflow_ns.data.demo.edits import demo_world
from semflow_ns.data.demo.geometry import Box, Sphere
from semflow_ns.data.demo.render import trace
from semflow_ns.data.demo.scene import DemoWorld
from semflow_ns.data.format import load_scene
from semflow_ns.data.format.frame_files import read_label_image
from semflow_ns.model_components.inspect import cast_rays, frame_camera, inspect_rays, pixel_rays, querying
from semflow_ns.model_components.rendering import composite
from semflow_ns.model_components.trajectories import integrate_paths
from semflow_ns.models import semflow_model

CONSOLE = Console(width=160)
HORIZONS = (1, 3, 6, 12)
"""Frames from the clicked one over which the path error is also reported."""


@dataclass
class Args:
    """Benchmark options."""

    load_config: Path
    """config.yml of a semantic-flow run trained on the demo scene."""
    num_frames: int = 6
    """Clicked frames, evenly spread over the video."""
    pixels_per_object: int = 8
    """Clicks per moving object and frame (fewer if the object shows fewer pixels)."""
    margin: int = 2
    """Pixels kept away from an object's outline (labels are exact, renders are soft there)."""
    seed: int = 0
    """Seed of the pixel choice."""
    viewer_clicks: int = 0
    """Clicks in nerfstudio's viewer through headless Chromium for the latency (0: skip)."""
    chromium: str = "chromium"
    """Chromium executable (for --viewer-clicks)."""
    output: Path = Path("outputs/benchmark_trajectories/results.json")
    """Where the results go as JSON."""


def object_size(world: DemoWorld, body: int) -> float:
    """Largest extent of a body (a sphere's diameter, a box's longest side)."""
    shape = world.bodies[body].shape
    if isinstance(shape, Sphere):
        return 2.0 * shape.radius
    if isinstance(shape, Box):
        return 2.0 * max(shape.half)
    raise ValueError(f"no size for {type(shape).__name__}")


def moves(world: DemoWorld, body: int) -> bool:
    """Whether a body is somewhere else at the end of the video than at its start."""
    return not np.allclose(world.bodies[body].motion(0.0)[1], world.bodies[body].motion(1.0)[1])


def pick_pixels(labels: np.ndarray, instance: int, count: int, margin: int, rng: np.random.Generator) -> list:
    """Up to ``count`` pixels (x, y) of ``instance`` at least ``margin`` pixels inside its outline."""
    mask = binary_erosion(labels == instance, iterations=margin) if margin > 0 else labels == instance
    rows, cols = np.nonzero(mask)
    chosen = rng.choice(len(rows), size=min(count, len(rows)), replace=False) if len(rows) else []
    return [(int(cols[i]), int(rows[i])) for i in chosen]


def carried(world: DemoWorld, body: int, local: np.ndarray, times: list[float]) -> np.ndarray:
    """[T, 3] world positions at ``times`` of a point fixed at ``local`` in a body's frame."""
    return np.stack([rot @ local + centre for rot, centre in (world.bodies[body].motion(t) for t in times)])


@contextmanager
def recording_spread(spreads: list):
    """Appends, for every ray the model renders inside the block, the standard deviation of its sample depths
    under the blended weights (the model's own ``render_weights``, wrapped; nothing else changes)."""
    render_weights = semflow_model.render_weights

    def recorded(ray_samples, *densities):
        weights = render_weights(ray_samples, *densities)
        total = weights.blended.total
        depth = (ray_samples.frustums.starts + ray_samples.frustums.ends) / 2
        accumulation = total.sum(dim=-2).clamp(min=1e-8)
        mean = composite(total, depth) / accumulation
        variance = composite(total, (depth - mean[:, None]) ** 2) / accumulation
        spreads.append(variance.sqrt()[:, 0].cpu())
        return weights

    semflow_model.render_weights = recorded
    try:
        yield
    finally:
        semflow_model.render_weights = render_weights


def score_frame(model: Any, world: DemoWorld, scene, frame: int, args: Args, rng) -> list[dict]:
    """One row per click on the moving objects of ``frame``."""
    labels = read_label_image(scene.frames[frame].instances)
    moving_bodies = [i for i in range(len(world.bodies)) if moves(world, i)]
    picks = [(body, p) for body in moving_bodies for p in pick_pixels(labels, world.bodies[body].instance_id,
             args.pixels_per_object, args.margin, rng)]  # fmt: skip
    if not picks:
        return []
    camera = frame_camera(model, frame)
    origins, directions = pixel_rays(camera, [p for _, p in picks])
    time_f = float(camera.times.flatten()[0])
    spreads: list = []
    with querying(model), recording_spread(spreads):
        found = inspect_rays(model, origins, directions, time_f)
        points = torch.tensor([f.point for f in found])
        paths = integrate_paths(model, points, torch.tensor([f.moving for f in found]), time_f)
    spread = torch.cat(spreads).numpy()
    times = paths.frame_times.cpu().tolist()
    hits = trace(world, world.poses(time_f), origins.double().numpy(), directions.double().numpy())
    rows = []
    for k, ((body, pixel), inspection) in enumerate(zip(picks, found, strict=True)):
        if hits.body[k] != body or not inspection.surface:
            continue  # the centre ray misses the object (a thin part), or the model sees no surface
        rot, centre = world.bodies[body].motion(time_f)
        predicted = paths.points[k].cpu().numpy().astype(np.float64)
        truth = carried(world, body, hits.local_points[k], times)
        own = carried(world, body, rot.T @ (predicted[frame] - centre), times)
        size = object_size(world, body)
        frames_all = torch.arange(len(times))
        seen, _ = model.video_cameras.project(paths.points[k].cpu(), frames_all)
        true_uv, true_depth = model.video_cameras.project(torch.from_numpy(truth).float(), frames_all)
        apparent = size * model.video_cameras.intrinsics[frames_all, 0] / true_depth[:, 0]
        rows.append(
            {
                "object": world.bodies[body].name,
                "frame": frame,
                "pixel": list(pixel),
                "class": inspection.class_name,
                "moving": inspection.moving,
                "path_error": float(np.linalg.norm(predicted - truth, axis=1).mean() / size),
                **{
                    f"within_{k}": float(np.linalg.norm(predicted - truth, axis=1)[near].mean() / size)
                    for k in HORIZONS
                    for near in [np.abs(np.arange(len(times)) - frame) <= k]
                },
                "flow_error": float(np.linalg.norm(predicted - own, axis=1).mean() / size),
                "start_error": float(np.linalg.norm(predicted[frame] - truth[frame]) / size),
                "image_error": float(((seen - true_uv).norm(dim=-1) / apparent).mean()),
                "true_travel": float(np.linalg.norm(np.diff(truth, axis=0), axis=1).sum() / size),
                "travel_ratio": float(
                    np.linalg.norm(np.diff(predicted, axis=0), axis=1).sum()
                    / max(np.linalg.norm(np.diff(own, axis=0), axis=1).sum(), 1e-9)
                ),
                "spread": float(spread[k] / size),
            }
        )
    return rows


def depth_errors(model: Any, world: DemoWorld, frames: list[int]) -> dict[str, dict[str, float]]:
    """Per body: rendered depth along each pixel's ray against the true distance to the surface it hits (metres;
    ``relative_error``: |error| / distance), over whole ``frames``."""
    errors: dict[int, list[np.ndarray]] = {}
    for frame in frames:
        camera = frame_camera(model, frame)
        rays = camera.generate_rays(camera_indices=0)
        origins = rays.origins.reshape(-1, 3)
        directions = torch.nn.functional.normalize(rays.directions.reshape(-1, 3), dim=-1)
        time_f = float(camera.times.flatten()[0])
        spreads: list = []
        with querying(model), recording_spread(spreads):
            depth = cast_rays(model, origins, directions, time_f)["depth"][:, 0].cpu().double().numpy()
        spread = torch.cat(spreads).double().numpy()
        hits = trace(world, world.poses(time_f), origins.double().numpy(), directions.double().numpy())
        for body in np.unique(hits.body):
            own = hits.body == body
            errors.setdefault(int(body), []).append(
                np.stack([depth[own] - hits.distance[own], hits.distance[own], spread[own]], axis=-1)
            )
    summary = {}
    for body, parts in sorted(errors.items()):
        error, distance, spread = np.concatenate(parts).T
        summary[world.bodies[body].name] = {
            "pixels": int(len(error)),
            "distance": float(np.median(distance)),
            "signed_error": float(np.median(error)),
            "relative_error": float(np.median(np.abs(error) / distance)),
            "spread": float(np.median(spread)),
            "moving": moves(world, body),
        }
    return summary


def summarise(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Per object (and over all): means of the relative errors, median path error, moving share, clicks."""
    summary = {}
    for name in sorted({r["object"] for r in rows}) + ["all"]:
        own = [r for r in rows if name in ("all", r["object"])]
        summary[name] = {
            "clicks": len(own),
            "path_error": float(np.mean([r["path_error"] for r in own])),
            "path_error_median": float(np.median([r["path_error"] for r in own])),
            "flow_error": float(np.mean([r["flow_error"] for r in own])),
            "start_error": float(np.mean([r["start_error"] for r in own])),
            "image_error": float(np.mean([r["image_error"] for r in own])),
            **{f"within_{k}": float(np.mean([r[f"within_{k}"] for r in own])) for k in HORIZONS},
            "moving": float(np.mean([r["moving"] for r in own])),
            "true_travel": float(np.mean([r["true_travel"] for r in own])),
            "travel_ratio": float(np.median([r["travel_ratio"] for r in own])),
            "spread": float(np.median([r["spread"] for r in own])),
        }
    return summary


def single_click_seconds(model: Any, repeats: int = 10) -> float:
    """Mean time of one click's inspect + path (one ray, as the viewer casts it), without a viewer."""
    camera = frame_camera(model, 0)
    origins, directions = pixel_rays(camera, [(int(camera.width) // 2, int(camera.height) // 2)])
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        with querying(model):
            (found,) = inspect_rays(model, origins, directions, 0.5)
            integrate_paths(model, torch.tensor([found.point]), torch.tensor([True]), 0.5)
        seconds.append(time.perf_counter() - started)
    return float(np.mean(seconds[1:]))


def viewer_click_latency(config, pipeline, step: int, clicks: int, chromium: str) -> dict[str, Any]:
    """Seconds from a mouse click in headless Chromium to the answer in the panel, in nerfstudio's viewer at its
    default resolution, each click made while the viewer renders a full-resolution frame."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from make_figures import CANVAS_CENTRE, Chromium, wait_for

    from semflow_ns.utils.camera_paths import look_at_point
    from semflow_ns.viewer.panel import INSPECT
    from semflow_ns.viewer.session import camera_state, point_client_camera, start_viewer, viewer_url

    model = pipeline.model
    tools, panel = model.semantic_flow_pointer, model.semantic_flow_panel
    viewer = start_viewer(config, pipeline, step)
    cameras = model.kwargs["metadata"]["semflow_video"].cameras
    middle = len(cameras) // 2
    viewer.control_panel._time.value = float(cameras.times[middle, 0])
    poses = np.tile(np.eye(4), (len(cameras), 1, 1))
    poses[:, :3] = cameras.camera_to_worlds.numpy()
    centre = torch.from_numpy(look_at_point(poses, model.scene_box.aabb.mean(0).numpy().astype(float)))
    rng = np.random.default_rng(0)
    seconds, callback, states = [], [], []
    browser = Chromium(chromium, (1400, 1000))
    try:
        browser.call("Page.navigate", url=viewer_url(viewer))
        wait_for(lambda: bool(viewer.viser_server.get_clients()), 60.0, "the browser to connect")
        (client,) = viewer.viser_server.get_clients().values()
        point_client_camera(client, camera_state(cameras, middle), centre)
        machine = viewer.render_statemachines[client.client_id]
        wait_for(lambda: bool(machine.output_keys), 900.0, "the first render")
        panel.pointer_mode.value = INSPECT
        wait_for(lambda: tools.mode == INSPECT, 10.0, "inspect mode")
        x, y = json.loads(browser.call("Runtime.evaluate", expression=CANVAS_CENTRE)["result"]["value"])
        for _ in range(clicks):
            viewer._trigger_rerender()
            wait_for(lambda: machine.state == "high", 120.0, "a full-resolution render")  # noqa: B023
            time.sleep(float(rng.uniform(0.2, 2.0)))  # into that render
            count, states = len(tools.inspections), states + [machine.state]
            started = time.perf_counter()
            for kind in ("mousePressed", "mouseReleased"):
                browser.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)
            wait_for(lambda: len(tools.inspections) > count, 120.0, "the click's answer")  # noqa: B023
            seconds.append(time.perf_counter() - started)
            callback.append(tools.latency)
    finally:
        browser.close()
        viewer.viser_server.stop()
    return {
        "max_res": int(viewer.control_panel.max_res),
        "clicks": clicks,
        "render_states_at_click": states,
        "mean_s": float(np.mean(seconds)),
        "max_s": float(np.max(seconds)),
        "callback_mean_s": float(np.mean(callback)),
    }


def main(args: Args) -> None:
    config, pipeline, _, step = eval_setup(args.load_config, test_mode="test")
    model = pipeline.model
    video = model.kwargs["metadata"]["semflow_video"]
    scene = load_scene(Path(video.image_filenames[0]).parent.parent)
    world, _ = demo_world(scene)
    for index in (0, len(video) - 1):  # the model's world is the demo's (the dataparser moves nothing)
        assert np.allclose(video.cameras.camera_to_worlds[index].numpy(), scene.frames[index].camera_to_world[:3])
    rng = np.random.default_rng(args.seed)
    frames = np.linspace(0, len(video) - 1, args.num_frames).round().astype(int).tolist()
    rows = [row for frame in frames for row in score_frame(model, world, scene, frame, args, rng)]
    summary = summarise(rows)
    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "load_config": str(args.load_config),
        "step": step,
        "frames": frames,
        "args": {k: str(v) for k, v in asdict(args).items()},
        "summary": summary,
        "click_seconds": single_click_seconds(model),
        "depth": depth_errors(model, world, list(range(0, len(video), 4))),
        "rows": rows,
    }
    if args.viewer_clicks > 0:
        result["viewer"] = viewer_click_latency(config, pipeline, step, args.viewer_clicks, args.chromium)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1))
    within = [f"within {k}" for k in HORIZONS]
    table = Table(
        "object",
        "clicks",
        "path error / size",
        "median",
        *within,
        "flow",
        "start",
        "image",
        "travel",
        "spread",
        "moving",
    )
    for name, s in summary.items():
        table.add_row(
            name, str(s["clicks"]), f"{s['path_error']:.3f}", f"{s['path_error_median']:.3f}",
            *[f"{s[f'within_{k}']:.3f}" for k in HORIZONS], f"{s['flow_error']:.3f}", f"{s['start_error']:.3f}",
            f"{s['image_error']:.3f}", f"{s['travel_ratio']:.2f}", f"{s['spread']:.2f}",
            f"{s['moving']:.2f}",
        )  # fmt: skip
    CONSOLE.print(table)
    depth = Table(
        "body", "moving", "pixels", "true distance (m)", "depth error (m, median)", "|error| / distance", "spread (m)"
    )
    for name, d in result["depth"].items():
        depth.add_row(
            name, "yes" if d["moving"] else "no", str(d["pixels"]), f"{d['distance']:.2f}", f"{d['signed_error']:+.3f}",
            f"{d['relative_error']:.3f}", f"{d['spread']:.3f}",
        )  # fmt: skip
    CONSOLE.print(depth)
    CONSOLE.print(f"one click (inspect + path, no viewer): {result['click_seconds']:.3f} s")
    if "viewer" in result:
        CONSOLE.print(f"in the viewer: {result['viewer']}")
    CONSOLE.print(f"wrote {args.output}")


if __name__ == "__main__":
    main(tyro.cli(Args))
