"""Bad DynNeRF folders: a clear error naming the file (and line/row), nothing written to the input or cache."""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semflow_ns.data.dataparsers.dynnerf_dataparser import DynNeRFDataParserConfig
from semflow_ns.data.format import SceneFormatError


def break_shape(root: Path) -> None:
    np.save(root / "poses_bounds.npy", np.load(root / "poses_bounds.npy")[:, :15])


def break_nan(root: Path) -> None:
    data = np.load(root / "poses_bounds.npy")
    data[3, 2] = np.nan
    np.save(root / "poses_bounds.npy", data)


def break_labelmap(root: Path) -> None:
    lines = (root / "labelmap.txt").read_text().splitlines()
    lines[2] = "wall 150,150,150"
    (root / "labelmap.txt").write_text("\n".join(lines) + "\n")


def break_colour(root: Path) -> None:
    path = root / "SegmentationClass_train" / "002.png"
    rgb = np.asarray(Image.open(path).convert("RGB")).copy()
    rgb[:2, :3] = (1, 2, 3)
    Image.fromarray(rgb).save(path)


def break_label_size(root: Path) -> None:
    Image.new("RGB", (40, 30), (152, 78, 163)).save(root / "SegmentationClass_train" / "001.png")  # "floor"


def drop_label(root: Path) -> None:
    (root / "SegmentationClass_train" / "004.png").unlink()


def extra_label(root: Path) -> None:
    Image.new("RGB", (64, 48)).save(root / "SegmentationClass_train" / "extra.png")


def two_frames(root: Path) -> None:
    np.save(root / "poses_bounds.npy", np.load(root / "poses_bounds.npy")[:2])
    for folder in ("images", "images_2", "SegmentationClass_train"):
        for path in sorted((root / folder).iterdir())[2:]:
            path.unlink()


def fewer_rows(root: Path) -> None:
    np.save(root / "poses_bounds.npy", np.load(root / "poses_bounds.npy")[:5])


def unknown_foreground(root: Path) -> None:
    (root / "foreground_object.txt").write_text("ball\nbicycle\n")


def corrupt_flow(root: Path) -> None:
    np.savez(root / "flow" / "001_fwd.npz", flow=np.zeros((48, 64, 3)), mask=np.ones((48, 64)))


CASES: list[tuple[Callable[[Path], None], str]] = [
    (break_shape, r"poses_bounds\.npy: expected an N x 17 array .* got shape \[6, 15\]"),
    (break_nan, r"poses_bounds\.npy: row 3 \(image 3\) contains NaN or inf"),
    (break_labelmap, r"labelmap\.txt:3: cannot parse 'wall 150,150,150'"),
    (break_colour, r"SegmentationClass_train/002\.png: 1 colour\(s\) not in the label map .*: \(1, 2, 3\): 6 px"),
    (break_label_size, r"SegmentationClass_train/001\.png: label is \(40, 30\) .* pass --resize-labels"),
    (drop_label, r"SegmentationClass_train: 1 frame\(s\) have no label images .*004\.png"),
    (extra_label, r"SegmentationClass_train: 1 label images .* match no frame by name: extra\.png"),
    (two_frames, r"poses_bounds\.npy: 2 frame\(s\); a dynamic scene needs at least 3"),
    (fewer_rows, r"poses_bounds\.npy: 5 rows but .*images_2 holds 6 images"),
    (unknown_foreground, r"foreground_object\.txt:2: 'bicycle' is not a class"),
    (corrupt_flow, r"flow/001_fwd\.npz: 'flow' must have shape \[H, W, 2\]"),
]


@pytest.mark.parametrize(("damage", "message"), CASES, ids=[c[0].__name__ for c in CASES])
def test_bad_input_fails_before_training_and_changes_nothing(
    make_dynnerf, snapshot, tmp_path: Path, damage: Callable[[Path], None], message: str
) -> None:
    root = make_dynnerf()
    damage(root)
    before = snapshot(root)
    parser = DynNeRFDataParserConfig(data=root, cache_dir=tmp_path / "cache").setup()
    with pytest.raises(SceneFormatError, match=message):
        parser.get_dataparser_outputs("train")
    assert snapshot(root) == before
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_resize_labels_accepts_other_sizes(make_dynnerf, tmp_path: Path) -> None:
    root = make_dynnerf()
    break_label_size(root)
    out = DynNeRFDataParserConfig(data=root, cache_dir=tmp_path / "c", resize_labels=True).setup()
    assert len(out.get_dataparser_outputs("train").image_filenames) == 6


def test_missing_folder_and_files(tmp_path: Path) -> None:
    with pytest.raises(SceneFormatError, match="DynNeRF scene folder not found"):
        DynNeRFDataParserConfig(data=tmp_path / "nope", cache_dir=tmp_path / "c").setup().get_dataparser_outputs()
    (tmp_path / "empty").mkdir()
    with pytest.raises(SceneFormatError, match=r"empty/poses_bounds\.npy: not found"):
        DynNeRFDataParserConfig(data=tmp_path / "empty", cache_dir=tmp_path / "c").setup().get_dataparser_outputs()
