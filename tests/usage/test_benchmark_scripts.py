"""The scripts in ``benchmarks/`` on the tiny run and scene: the README's tables and pictures come from them."""

import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semflow_ns.data.format import load_scene, read_flow

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"

pytestmark = pytest.mark.slow


def test_training_benchmark_reports_speed_memory_and_held_out_metrics(tiny_scene: Path, tmp_path: Path, run_cli):
    run_cli(
        sys.executable,
        str(BENCHMARKS / "benchmark_training.py"),
        "--data",
        str(tiny_scene),
        "--steps",
        "3",
        "--nerfacto-steps",
        "0",
        "--output",
        str(tmp_path),
    )
    (result,) = json.loads((tmp_path / "results.json").read_text())
    assert result["method"] == "semantic-flow" and result["steps"] == 3
    assert result["train_rays_per_s"] > 0 and result["peak_rss_mb"] > 100
    assert 0 < result["train_s"] < result["wall_s"]
    (last,) = result["curve"]  # the evaluation at the last step
    assert last["step"] == 3
    for key in ("psnr", "ssim", "miou", "miou_fg", "total_accuracy", "class_accuracy"):
        assert np.isfinite(last[key]), key
        assert all(np.isfinite(last["by_view_set"][name][key]) for name in ("nearby", "novel")), key
    assert list((tmp_path / "runs").glob("*/semantic-flow/*/nerfstudio_models/step-000000002.ckpt"))


def _viewport(path: Path) -> np.ndarray:
    """The 3D view of a viewer screenshot: below the title bar, left of the control panel."""
    image = np.asarray(Image.open(path).convert("RGB")).astype(int)
    height, width, _ = image.shape
    return image[80 : height - 80, 80 : width - 400]


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium (README install line)")
def test_figures_show_semantics_in_the_viewer_and_a_removal(
    trained_run: Path, tiny_scene: Path, tmp_path: Path, run_cli
):
    output = run_cli(
        sys.executable,
        str(BENCHMARKS / "make_figures.py"),
        "--load-config",
        str(trained_run),
        "--output-dir",
        str(tmp_path),
        "--num-frames",
        "2",
        "--remove-classes",
        "floor",
        "--timeout",
        "300",
    )
    frames = Image.open(tmp_path / "frames.png")
    assert frames.height > 2 * 192  # two rows of rgb | semantics | floor removed
    semantics = _viewport(tmp_path / "viewer_semantics.png")
    removed = _viewport(tmp_path / "viewer_removed.png")
    # the view shows the semantics output: large areas in exactly the class colours
    colours = np.array([c.color for c in load_scene(tiny_scene).classes])
    share = [(np.abs(semantics - c).max(-1) <= 3).mean() for c in colours]
    assert sum(s > 0.02 for s in share) >= 2, f"class colour shares in the viewport: {share}"
    assert sum(share) > 0.5, f"class colour shares in the viewport: {share}"
    assert np.abs(semantics - removed).mean() > 5  # the second screenshot (rgb, floor unticked) differs
    assert (tmp_path / "viewer_paths.png").is_file()
    drawn = re.search(r"viewer_paths\.png \((\d+) paths\)", output.stdout)
    assert drawn and int(drawn.group(1)) >= 1, "paths of points on the moving objects are drawn"


def test_trajectory_benchmark_scores_clicked_paths_against_the_demo_motion(trained_run: Path, tmp_path: Path, run_cli):
    out = tmp_path / "results.json"
    args = ["--load-config", str(trained_run), "--num-frames", "2", "--pixels-per-object", "2", "--margin", "0"]
    args += ["--output", str(out)]
    run_cli(sys.executable, str(BENCHMARKS / "benchmark_trajectories.py"), *args)
    result = json.loads(out.read_text())
    assert result["frames"] == [0, 7] and result["click_seconds"] > 0
    objects = {"rolling ball", "bouncing ball", "cube"}
    assert {r["object"] for r in result["rows"]} <= objects and set(result["summary"]) <= objects | {"all"}
    assert result["rows"], "pixels on the moving objects were clicked"
    for row in result["rows"]:
        keys = ("path_error", "flow_error", "start_error", "image_error", "within_1", "within_12", "travel_ratio")
        assert all(np.isfinite(row[k]) and row[k] >= 0 for k in keys + ("spread",))
        assert row["true_travel"] > 0, "the picked objects move"
    depth = result["depth"]  # geometry per body over whole frames, still bodies included
    assert {"floor", "walls"} <= set(depth) and {n for n, d in depth.items() if d["moving"]} <= objects
    assert sum(d["pixels"] for d in depth.values()) == 2 * 24 * 32  # frames 0 and 4 of the 8-frame, 32 x 24 demo
    assert all(np.isfinite(d["signed_error"]) and 0 <= d["relative_error"] < np.inf for d in depth.values())
    assert all(np.isfinite(d["spread"]) and d["spread"] >= 0 for d in depth.values())


def test_window_ends_benchmark_scores_the_first_and_last_frames_mirrored_and_empty(
    trained_run: Path, tmp_path: Path, run_cli
):
    out = tmp_path / "ends.json"
    args = [str(trained_run), "--eval-source", "unlabelled", "--render-scale", "0.5", "--json-path", str(out)]
    run_cli(sys.executable, str(BENCHMARKS / "benchmark_window_ends.py"), *args)
    (row,) = json.loads(out.read_text())
    assert row["scored_images"] == 4  # frames 4-7 of the 8-frame video: labels on its first half
    (last,) = row["ends"]  # the only one whose window reaches past an end
    assert last["frame"] == 7
    for scores in (last["empty"], last["mirrored"]):
        assert all(0.0 <= scores[key] <= 1.0 for key in ("j", "f", "jf"))
    assert row["run_jf_change"] == pytest.approx((last["mirrored"]["jf"] - last["empty"]["jf"]) / 4)


def test_trajectory_benchmark_spread_is_the_depth_deviation_under_the_blended_weights(monkeypatch):
    """One opaque sample has no spread; two samples of equal weight 2 m apart have a spread of 1 m."""
    import torch
    from nerfstudio.cameras.rays import Frustums, RaySamples

    from semflow_ns.models import semflow_model

    monkeypatch.syspath_prepend(str(BENCHMARKS))
    from benchmark_trajectories import recording_spread

    starts = torch.tensor([[0.5, 2.5, 4.5], [0.5, 2.5, 4.5]])[..., None]
    frustums = Frustums(
        origins=torch.zeros(2, 3, 3), directions=torch.tensor([0.0, 0.0, 1.0]).expand(2, 3, 3),
        starts=starts, ends=starts + 1.0, pixel_area=torch.ones(2, 3, 1),
    )  # fmt: skip
    samples = RaySamples(frustums=frustums, deltas=torch.ones(2, 3, 1))
    big = 50.0  # opacity 1 - exp(-50): opaque
    static = torch.tensor([[big, 0.0, 0.0], [0.0, 0.0, 0.0]])[..., None]
    dynamic = torch.tensor([[0.0, 0.0, 0.0], [np.log(2.0), big, 0.0]])[..., None]  # weights 1/2 at 1 m, 1/2 at 3 m
    blend = torch.tensor([[0.0], [1.0]]).expand(2, 3)[..., None]  # ray 0 static, ray 1 dynamic
    spreads: list = []
    with recording_spread(spreads):
        weights = semflow_model.render_weights(samples, static, dynamic, blend)
    np.testing.assert_allclose(weights.blended.total[..., 0].numpy(), [[1, 0, 0], [0.5, 0.5, 0]], atol=1e-4)
    assert semflow_model.render_weights.__name__ == "render_weights", "the model's function is restored"
    np.testing.assert_allclose(torch.cat(spreads).numpy(), [0.0, 1.0], atol=1e-4)


def test_profile_gives_time_to_every_part_a_training_step_runs(tiny_scene: Path, monkeypatch):
    """``benchmarks/profile_step.py`` on a tiny model: every labelled part that runs in a step (all but the camera
    optimiser on exact poses) gets time, so a part whose method is renamed cannot silently drop out of the table."""
    from nerfstudio.engine.callbacks import TrainingCallbackAttributes
    from nerfstudio.engine.optimizers import Optimizers
    from torch.profiler import ProfilerActivity, profile

    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import profile_step
    from model_helpers import tiny_pipeline

    config, pipeline = tiny_pipeline(tiny_scene)
    pipeline.train()
    optimizers = Optimizers(config.optimizers, pipeline.get_param_groups())
    attributes = TrainingCallbackAttributes(optimizers=optimizers, grad_scaler=None, pipeline=pipeline, trainer=None)
    callbacks = pipeline.get_training_callbacks(attributes)
    profile_step.train_step(pipeline, optimizers, callbacks, 0)
    labels = profile_step.label_parts(pipeline) | {"optimizer"}
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        profile_step.train_step(pipeline, optimizers, callbacks, 1)
    forward, backward = profile_step.attribute(prof.events(), labels)
    timed = {part for part in set(forward) | set(backward) if forward.get(part, 0) + backward.get(part, 0) > 0}
    assert labels - {"camera optimiser"} <= timed


def test_task_benchmark_scores_models_and_2d_baselines_on_the_unlabelled_frames(
    tiny_scene: Path, tmp_path: Path, run_cli
):
    run_cli(
        sys.executable, str(BENCHMARKS / "benchmark_tasks.py"), "--no-demo", "--data", str(tiny_scene),
        "--tasks", "tracking-first", "tracking-50", "--methods", "semantic-flow", "point-head", "copy", "flow",
        "--steps", "3", "--output", str(tmp_path), "--parallel", "2", "--threads", "1",
    )  # fmt: skip
    results = json.loads((tmp_path / "results.json").read_text())
    methods = ["semantic-flow", "point-head", "copy", "flow"]
    assert [(r["task"], r["method"]) for r in results] == [
        (t, m) for t in ("tracking-first", "tracking-50") for m in methods
    ]
    for r in results:
        frames = [1, 2, 3, 4, 5, 6, 7] if r["task"] == "tracking-first" else [4, 5, 6, 7]
        assert r["frames"] == frames, (r["task"], r["method"])
        for key in ("j", "f", "jf", "miou", "miou_fg"):
            assert 0.0 <= r["scores"][key] <= 1.0, (r["method"], key)
        assert r["wall_s"] > 0
    models = [r for r in results if r["method"] in ("semantic-flow", "point-head")]
    assert all(r["steps"] == 3 and r["seed"] == 0 for r in models)
    assert list((tmp_path / "runs").glob("*-point-head-seed0/semantic-flow/*/config.yml")), "point-head is its own run"
    by_method = {r["method"]: r["scores"] for r in results if r["task"] == "tracking-50"}
    assert by_method["flow"]["jf"] > by_method["copy"]["jf"], "following the flow beats copying the last labels"


def test_task_benchmark_runs_seeds_records_a_curve_and_resumes(tiny_scene: Path, tmp_path: Path, run_cli):
    args = [sys.executable, str(BENCHMARKS / "benchmark_tasks.py"), "--no-demo", "--data", str(tiny_scene)]
    args += ["--tasks", "tracking-50", "--methods", "semantic-flow", "--steps", "4", "--eval-every", "2"]
    args += ["--output", str(tmp_path), "--threads", "1"]
    output = run_cli(*args, "--seeds", "0", "1")
    results = json.loads((tmp_path / "results.json").read_text())
    assert [r["seed"] for r in results] == [0, 1]
    for r in results:
        assert [p["step"] for p in r["curve"]] == [2, 4]
        assert r["curve"][0]["wall_s"] < r["curve"][1]["wall_s"] == r["train_s"]
        assert r["curve"][1]["jf"] == r["scores"]["jf"]
    assert "mean" in output.stdout
    run_cli(*args, "--seeds", "0", "1", "2", "--resume")  # only seed 2 runs
    again = json.loads((tmp_path / "results.json").read_text())
    assert [r["seed"] for r in again] == [0, 1, 2] and again[:2] == results
    assert results[0]["scores"]["psnr"] != results[1]["scores"]["psnr"]
    run_cli(*args[:-4], "--output", str(tmp_path / "repeat"), "--threads", "1", "--seeds", "1")
    (repeat,) = json.loads((tmp_path / "repeat" / "results.json").read_text())
    scores = [[{k: v for k, v in row.items() if k != "fps"} for row in r["per_frame"]] for r in (repeat, results[1])]
    assert scores[0] == scores[1], "a seed gives the same run again"


def test_transfer_benchmark_compares_adapted_and_scratch_runs_multi_scene_and_removal(
    tmp_path: Path, run_cli, tiny_model_args: list[str]
):
    run_cli(
        sys.executable, str(BENCHMARKS / "benchmark_transfer.py"), "--demo-scale", "0.17", "--full-steps", "3",
        "--short-steps", "2", "--multi-steps", "2", "--multi-seeds", "0", "1",
        f"--model-args={' '.join(tiny_model_args)}", "--output", str(tmp_path),
    )  # fmt: skip
    results = json.loads((tmp_path / "results.json").read_text())
    multi = results["multi"]
    assert [r["steps"] for r in multi["single"]] == [2, 2] and multi["multi"]["steps"] == 4
    assert [r["scene_name"] for r in multi["single"]] == ["demo-seed0", "demo-seed1"]
    assert set(multi["multi"]["scores_by_scene"]) == {"demo-seed0", "demo-seed1"}
    for single in multi["single"]:
        assert single["frames"] == [4, 5, 6, 7]
        assert 0.0 <= multi["multi"]["scores_by_scene"][single["scene_name"]]["miou"] <= 1.0
    multi_config = yaml_config(Path(multi["multi"]["config"]))
    assert multi_config.method_name == "semantic-flow-multi"
    assert all(g["scheduler"].max_steps == 4 for g in multi_config.optimizers.values()), "its own schedule"
    assert results["source"]["steps"] == 3
    runs = {r["name"]: r for r in results["adaptation"]}
    assert list(runs) == ["scratch-2", "adapted-2", "scratch-full"]
    assert [runs[n]["steps"] for n in runs] == [2, 2, 3]
    for run in runs.values():  # tracking-50 on the 8-frame target: scored on frames 4-7
        assert run["frames"] == [4, 5, 6, 7] and 0.0 <= run["scores"]["jf"] <= 1.0
    adapted = yaml_config(Path(runs["adapted-2"]["config"]))
    assert adapted.pipeline.model.adaptation.load_config == Path(results["source"]["config"])
    assert [r["remove"] for r in results["removal"]] == ["class:ball", "instance:cube"]
    for removal in results["removal"]:
        assert set(removal["by_view_set"]) == {"nearby", "novel"}
        assert removal["scores"]["rest_psnr_unchanged"] > removal["scores"]["rest_psnr"]


def yaml_config(path: Path):
    import yaml

    return yaml.load(path.read_text(), Loader=yaml.Loader)


def few_davis_frames(tmp_path: Path) -> Path:
    """The first 6 frames of the shared DAVIS clip and their masks (a fast test); skips when it is absent."""
    clip = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "davis-car-shadow"
    if not clip.is_dir():
        pytest.skip(f"the shared DAVIS clip (car-shadow: JPEG frames and masks) is not at {clip}")
    few = tmp_path / "clip"
    for sub, suffix in (("images", ".jpg"), ("masks", ".png")):
        (few / sub).mkdir(parents=True)
        for path in sorted((clip / sub).glob(f"*{suffix}"))[:6]:
            shutil.copyfile(path, few / sub / path.name)
    return few


def test_motion_mask_benchmark_scores_the_flow_masks_against_davis_ground_truth(tmp_path: Path, run_cli):
    few = few_davis_frames(tmp_path)
    out = tmp_path / "results.json"
    run_cli(sys.executable, str(BENCHMARKS / "benchmark_motion_masks.py"), str(few), "--output", str(out))
    (row,) = json.loads(out.read_text())
    assert row["clip"] == "clip" and row["frames"] == 6
    assert row["object_static"] < 0.02 and row["object_moving"] > 0.5 and row["static"] > 0.3


def test_motion_object_benchmark_scores_the_found_objects_against_davis_ground_truth(tmp_path: Path, run_cli):
    few = few_davis_frames(tmp_path)
    out = tmp_path / "results.json"
    run_cli(sys.executable, str(BENCHMARKS / "benchmark_motion_objects.py"), str(few), "--output", str(out))
    (row,) = json.loads(out.read_text())
    assert row["clip"] == "clip" and row["frames"] == 6 and row["objects"] >= 1
    assert row["j_best"] > 0.4 and row["j_union"] > row["j_moving"] and row["best_frames"] == 6


def test_carried_label_benchmark_scores_the_training_guesses_by_distance(tiny_scene: Path, tmp_path: Path, run_cli):
    out = tmp_path / "results.json"
    script = str(BENCHMARKS / "benchmark_carried_labels.py")
    run_cli(
        sys.executable,
        script,
        "--no-demo",
        "--data",
        str(tiny_scene),
        "--tasks",
        "tracking-first",
        "--output",
        str(out),
    )
    rows = json.loads(out.read_text())["rows"]
    assert [r["frames_from_labels"] for r in rows] == ["1", "2-3", "4-6", "7-10"]  # 8 frames, frame 0 labelled
    assert [r["mean_distance"] for r in rows] == [1.0, 2.5, 5.0, 7.0]
    _, valid = read_flow(load_scene(tiny_scene).frames[1].flow_bwd)
    assert rows[0]["checked"] == pytest.approx(valid.mean())  # one hop: every pixel whose flow passed the check
    assert all(0.5 < r["accuracy"] <= 1.0 for r in rows)
    assert rows[-1]["checked"] <= rows[0]["checked"]
    assert all(0.0 < r[key] <= 1.0 for r in rows for key in ("frame_fg_j_checked", "frame_fg_j_all"))
    failed = run_cli(sys.executable, script, "--no-demo", "--data", str(tiny_scene), "--tasks", "withheld-every-8",
                     "--output", str(out), check=False)  # fmt: skip
    assert failed.returncode != 0 and "labels every frame" in failed.stderr
