"""The per-frame file writer shared by the demo generator, semflow-process-data and the DynNeRF conversion."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semflow_ns.data.format import SceneFormatError, read_flow, read_label_image
from semflow_ns.data.producers.optical_flow import FrameFlow
from semflow_ns.data.producers.scene_files import consistent_fraction, read_rgb, write_flow_files, write_frame_files


def test_frame_files_land_in_their_folders(tmp_path: Path) -> None:
    rgb = np.random.default_rng(0).integers(0, 255, (4, 5, 3), dtype=np.uint8)
    ids = np.arange(20).reshape(4, 5) % 3
    motion = ids == 2
    depth = np.full((4, 5), 2.5, np.float32)
    paths = write_frame_files(tmp_path, "00007", rgb, ids, ids + 1, motion, depth)
    assert paths == {
        "image": tmp_path / "images" / "00007.png",
        "semantics": tmp_path / "semantics" / "00007.png",
        "instances": tmp_path / "instances" / "00007.png",
        "motion_mask": tmp_path / "motion_masks" / "00007.png",
        "depth": tmp_path / "depth" / "00007.npy",
    }
    assert np.array_equal(read_rgb(paths["image"]), rgb)
    assert np.array_equal(read_label_image(paths["semantics"]), ids)
    assert np.array_equal(read_label_image(paths["instances"]), ids + 1)
    assert np.array_equal(np.asarray(Image.open(paths["motion_mask"])), motion.astype(np.uint8) * 255)
    assert np.array_equal(np.load(paths["depth"]), depth)


def test_a_source_image_is_copied_and_labels_alone_can_be_written(tmp_path: Path) -> None:
    source = tmp_path / "in" / "Frame.JPG"
    source.parent.mkdir()
    Image.fromarray(np.zeros((3, 3, 3), np.uint8)).save(source, format="JPEG")
    paths = write_frame_files(tmp_path / "out", "a", source)
    assert paths == {"image": tmp_path / "out" / "images" / "a.jpg"}
    assert paths["image"].read_bytes() == source.read_bytes()
    labels_only = write_frame_files(tmp_path / "out", "b", semantics=np.zeros((3, 3), np.int64))
    assert set(labels_only) == {"semantics"} and not (tmp_path / "out" / "images" / "b.png").exists()


def test_flow_files_skip_the_missing_directions(tmp_path: Path) -> None:
    flow = np.ones((2, 3, 2), np.float32)
    mask = np.array([[True, False, True], [True, True, True]])
    flows = [FrameFlow(flow, mask, None, None), FrameFlow(None, None, -flow, mask)]
    records = write_flow_files(tmp_path, ["x", "y"], flows)
    assert records == [{"flow_fwd": tmp_path / "flow" / "x_fwd.npz"}, {"flow_bwd": tmp_path / "flow" / "y_bwd.npz"}]
    values, read_mask = read_flow(records[1]["flow_bwd"])
    assert np.array_equal(values, -flow) and np.array_equal(read_mask, mask)
    assert consistent_fraction(flows) == pytest.approx(10 / 12)


def test_unreadable_image_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(SceneFormatError, match="bad.png: cannot read the image"):
        read_rgb(bad)
