"""`ns-eval`, `semflow-eval` and `semflow-export` on a trained run (labels on frames 0-3 of 8)."""

import csv
import json

import numpy as np
import pytest
import tyro
import yaml

from semflow_ns.scripts import eval as semflow_eval
from semflow_ns.scripts import export as semflow_export

pytestmark = pytest.mark.slow

METRICS = {"psnr", "ssim", "miou", "total_accuracy", "class_accuracy"}
DAVIS = {"miou_fg", "j", "f", "jf"}


def test_ns_eval_reports_colour_and_semantic_metrics_without_downloads(trained_run, run_cli, tmp_path, monkeypatch):
    torch_home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(torch_home))  # an LPIPS/AlexNet download would land here
    output = tmp_path / "eval.json"
    run_cli("ns-eval", "--load-config", str(trained_run), "--output-path", str(output))
    report = json.loads(output.read_text())
    assert {"experiment_name", "method_name", "checkpoint", "results"} <= set(report)
    assert report["method_name"] == "semantic-flow"
    results = report["results"]
    assert METRICS | {f"{m}_std" for m in METRICS} <= set(results)
    assert all(np.isfinite(results[m]) for m in METRICS)
    assert 0.0 <= results["miou"] <= 1.0 and 0.0 <= results["total_accuracy"] <= 1.0
    assert not torch_home.exists() or not any(torch_home.rglob("*.pth"))


def test_semflow_eval_scores_the_unlabelled_frames_separately(trained_run, tmp_path):
    output = tmp_path / "eval.json"
    command = tyro.cli(
        semflow_eval.SemanticEval, args=["--load-config", str(trained_run), "--output-path", str(output)]
    )
    assert semflow_eval.run(command) == 0
    report = json.loads(output.read_text())
    assert report["label_frames"] == "first:50%"
    # nearby views at frames 2 and 6 (0-based), then novel views at those frames and halfway to the next
    assert report["frames"][:4] == [2, 2, 6, 6] and report["frames"][4::2] == [2, 6] and len(report["frames"]) == 8
    assert report["frames_unlabelled"] == [4, 5, 6, 7], "frames 0-3 kept their labels in training"
    for key in ("results", "results_unlabelled"):
        assert METRICS | DAVIS <= set(report[key]), key
        assert all(0.0 <= report[key][m] <= 1.0 for m in DAVIS), key
    assert report["results_unlabelled"] != report["results"]

    with open(tmp_path / "eval.csv", newline="") as handle:  # per-image scores next to the JSON
        rows = list(csv.DictReader(handle))
    assert report["csv_path"] == str(tmp_path / "eval.csv")
    assert [int(r["frame"]) for r in rows if r["split"] == "eval"] == report["frames"]
    assert [int(r["frame"]) for r in rows if r["split"] == "unlabelled"] == report["frames_unlabelled"]
    unlabelled = [r for r in rows if r["split"] == "unlabelled"]
    assert np.isclose(np.mean([float(r["jf"]) for r in unlabelled]), report["results_unlabelled"]["jf"])
    assert np.isclose(np.mean([float(r["miou_fg"]) for r in unlabelled]), report["results_unlabelled"]["miou_fg"])
    for view_set in ("nearby", "novel"):  # the demo's two groups of held-out views, also scored apart
        scored = [float(r["psnr"]) for r in rows if r["split"] == "eval" and r["view_set"] == view_set]
        assert len(scored) == 4 and np.isclose(np.mean(scored), report["results_by_view_set"][view_set]["psnr"])


def test_semflow_export_writes_a_semantic_point_cloud_at_one_time(trained_run, tmp_path):
    import open3d as o3d

    output = tmp_path / "cloud.ply"
    args = ["--load-config", str(trained_run), "--time", "0.25", "--num-points", "500", "--output-path", str(output)]
    command = tyro.cli(semflow_export.ExportSemanticPointCloud, args=args)
    assert semflow_export.run(command) == 0
    cloud = o3d.io.read_point_cloud(str(output))
    assert len(cloud.points) >= 500
    config = yaml.load(trained_run.read_text(), Loader=yaml.Loader)
    scene = config.pipeline.datamanager.dataparser.data
    classes = json.loads((scene / "transforms.json").read_text())["classes"]
    palette = {tuple(c["color"]) for c in classes}
    colours = {tuple(int(round(v * 255)) for v in c) for c in np.asarray(cloud.colors)}
    assert colours <= palette, "points are coloured by class"


def test_removal_is_scored_against_the_true_background(trained_run, tiny_scene):
    from nerfstudio.utils.eval_utils import eval_setup

    from semflow_ns.data.format import load_scene
    from semflow_ns.eval.removal import SCORES, mean_scores, score_removal

    _, pipeline, _, _ = eval_setup(trained_run)
    means, rows = score_removal(pipeline, load_scene(tiny_scene), classes=["ball"])
    assert len(rows) == 8 and {r["view_set"] for r in rows} == {"nearby", "novel"}
    assert any(r["revealed_pixels"] > 0 for r in rows) and set(SCORES) <= set(means)
    assert all(0.0 <= means[k] <= 1.0 for k in ("revealed_ssim", "rest_ssim"))
    # removal changes the render only where the model predicts the ball: the rest stays closer to the unedited
    # render than any render is to the truth
    assert means["rest_psnr_unchanged"] > means["rest_psnr"] > 5.0
    assert pipeline.model.edit.removes is False, "the model is left without an edit"
    pooled = mean_scores([{"rest_psnr": np.inf}, {"rest_psnr": 10.0}])["rest_psnr"]  # errors 0 and 0.1
    assert pooled == pytest.approx(10 * np.log10(20))


def test_semflow_eval_scores_removal_on_a_demo_run(trained_run, tmp_path):
    output = tmp_path / "eval.json"
    args = ["--load-config", str(trained_run), "--output-path", str(output), "--no-unlabelled"]
    command = tyro.cli(semflow_eval.SemanticEval, args=[*args, "--remove-instances", "cube"])
    assert semflow_eval.run(command) == 0
    removal = json.loads(output.read_text())["removal"]
    assert removal["instances"] == ["cube"] and len(removal["per_view"]) == 8
    assert removal["results"]["rest_psnr_unchanged"] > removal["results"]["rest_psnr"]

    bad = tyro.cli(semflow_eval.SemanticEval, args=[*args, "--remove-classes", "floor"])
    with pytest.raises(semflow_eval.RunError, match=r"cannot remove \['floor'\]: removable classes are"):
        bad.report()


def test_semflow_eval_renders_and_scores_at_a_smaller_scale(trained_run, tmp_path):
    """--render-scale 0.5 renders the evaluation images at half size against resized ground truth."""
    output = tmp_path / "half.json"
    args = ["--load-config", str(trained_run), "--output-path", str(output), "--render-scale", "0.5"]
    assert semflow_eval.run(tyro.cli(semflow_eval.SemanticEval, args=[*args, "--no-unlabelled"])) == 0
    report = json.loads(output.read_text())
    assert all(0.0 <= report["results"][m] <= 1.0 for m in DAVIS) and np.isfinite(report["results"]["psnr"])
    config = yaml.load(trained_run.read_text(), Loader=yaml.Loader)
    with semflow_eval.SemanticEval(load_config=trained_run, output_path=output)._pipeline(None) as (pipeline, _):
        camera, batch = next(iter(semflow_eval.scaled_eval_images(pipeline, 0.5)))
        full_camera, full_batch = next(iter(pipeline.datamanager.fixed_indices_eval_dataloader))
    assert int(camera.width) == round(int(full_camera.width) * 0.5) and batch["image"].shape[1] == int(camera.width)
    assert batch["semantics"].shape[:2] == batch["image"].shape[:2]
    assert config.method_name == "semantic-flow"
    bad = tyro.cli(semflow_eval.SemanticEval, args=[*args[:4], "--render-scale", "1.5"])
    assert semflow_eval.run(bad) != 0
