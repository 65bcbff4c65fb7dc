"""Label maps (CVAT / Pascal-VOC), name lists, colour decoding and file pairing."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semflow_ns.data.format import SceneFormatError, SemanticClass
from semflow_ns.data.producers.files import pair_files
from semflow_ns.data.producers.labels import colors_to_ids, mark_dynamic, read_label_ids, read_labelmap, read_name_list

CVAT = """# label:color_rgb:parts:actions
background:0,0,0::
person:220,20,60::
balloon:0,0,142:part1:
"""


def test_cvat_labelmap(tmp_path: Path) -> None:
    (tmp_path / "labelmap.txt").write_text(CVAT)
    classes = read_labelmap(tmp_path / "labelmap.txt")
    assert [(c.name, c.color, c.dynamic) for c in classes] == [
        ("background", (0, 0, 0), False),
        ("person", (220, 20, 60), False),
        ("balloon", (0, 0, 142), False),
    ]
    (tmp_path / "fg.txt").write_text("balloon\n\nperson\n")
    moving = mark_dynamic(classes, read_name_list(tmp_path / "fg.txt"), tmp_path / "fg.txt")
    assert [c.dynamic for c in moving] == [False, True, True]


@pytest.mark.parametrize(
    ("line", "number"),
    [("person 220,20,60", 3), ("person:220,20::", 3), ("person:220,20,600::", 3), (":1,2,3::", 3), ("car:a,b,c::", 3)],
)
def test_unparsable_line_is_reported_with_its_number(tmp_path: Path, line: str, number: int) -> None:
    (tmp_path / "labelmap.txt").write_text(f"# header\nbackground:0,0,0::\n{line}\n")
    with pytest.raises(SceneFormatError, match=rf"labelmap\.txt:{number}: cannot parse {line!r}"):
        read_labelmap(tmp_path / "labelmap.txt")


def test_repeats_and_empty_maps(tmp_path: Path) -> None:
    (tmp_path / "labelmap.txt").write_text("# h\nbackground:0,0,0::\nsky:0,0,0::\n")
    with pytest.raises(SceneFormatError, match=r"labelmap\.txt:3: class 'sky' \(0, 0, 0\) repeats"):
        read_labelmap(tmp_path / "labelmap.txt")
    (tmp_path / "labelmap.txt").write_text("# only a header\n")
    with pytest.raises(SceneFormatError, match="no class lines"):
        read_labelmap(tmp_path / "labelmap.txt")


def test_unknown_foreground_name(tmp_path: Path) -> None:
    classes = [SemanticClass("background", (0, 0, 0)), SemanticClass("car", (1, 2, 3))]
    (tmp_path / "foreground_object.txt").write_text("car\nbus\n")
    with pytest.raises(SceneFormatError, match=r"foreground_object\.txt:2: 'bus' is not a class"):
        mark_dynamic(classes, read_name_list(tmp_path / "foreground_object.txt"), tmp_path / "foreground_object.txt")


def test_colour_decoding_and_unknown_colours() -> None:
    classes = [SemanticClass("background", (0, 0, 0)), SemanticClass("car", (200, 10, 10))]
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[1:3, 1:4] = (200, 10, 10)
    ids = colors_to_ids(rgb, classes, Path("l.png"), Path("labelmap.txt"))
    assert ids.dtype == np.int64 and int(ids.sum()) == 6
    rgb[0, :2] = (1, 2, 3)
    rgb[3, 0] = (9, 9, 9)
    with pytest.raises(SceneFormatError) as info:
        colors_to_ids(rgb, classes, Path("l.png"), Path("labelmap.txt"))
    assert str(info.value).startswith(
        "l.png: 2 colour(s) not in the label map labelmap.txt: (1, 2, 3): 2 px, (9, 9, 9): 1 px"
    )


def test_label_encodings(tmp_path: Path) -> None:
    values = np.array([[0, 255], [255, 0]], np.uint8)
    Image.fromarray(values).save(tmp_path / "mask.png")
    np.testing.assert_array_equal(read_label_ids(tmp_path / "mask.png", "binary"), [[0, 1], [1, 0]])
    np.testing.assert_array_equal(read_label_ids(tmp_path / "mask.png", "ids"), values)
    palette = Image.fromarray(np.array([[0, 2], [1, 0]], np.uint8), mode="P")
    palette.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * 759)
    palette.save(tmp_path / "palette.png")
    np.testing.assert_array_equal(read_label_ids(tmp_path / "palette.png", "ids"), [[0, 2], [1, 0]])
    classes = [SemanticClass("a", (0, 0, 0)), SemanticClass("b", (128, 0, 0)), SemanticClass("c", (0, 128, 0))]
    np.testing.assert_array_equal(read_label_ids(tmp_path / "palette.png", "color", classes), [[0, 2], [1, 0]])
    Image.fromarray(np.full((2, 2, 3), [5, 6, 7], np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(SceneFormatError, match=r"rgb\.png: an RGB label image with colours .* --labelmap"):
        read_label_ids(tmp_path / "rgb.png", "ids")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(SceneFormatError, match=r"broken\.png: cannot read the label image"):
        read_label_ids(tmp_path / "broken.png", "ids")


def test_pairing_by_name_by_order_and_errors(tmp_path: Path) -> None:
    frames = [tmp_path / "img" / f"{i:05d}.jpg" for i in range(4)]
    labels = [tmp_path / "lab" / f"{i:05d}.png" for i in range(4)]
    assert pair_files(frames, labels[::-1], "labels") == labels
    renamed = [tmp_path / "lab" / f"frame_{i}.png" for i in range(4)]
    assert pair_files(frames, renamed, "labels") == renamed  # no name matches, same count: sorted order
    with pytest.raises(SceneFormatError, match=r"lab: 1 labels match no frame by name: extra\.png"):
        pair_files(frames, [*labels, tmp_path / "lab" / "extra.png"], "labels")
    with pytest.raises(
        SceneFormatError, match=r"lab: 1 frame\(s\) have no labels: 00003\.jpg \(3 files for 4 frames\)"
    ):
        pair_files(frames, labels[:3], "labels")
    assert pair_files(frames, labels[:3], "labels", allow_missing=True) == [*labels[:3], None]
    with pytest.raises(SceneFormatError, match="3 labels match no frame"):
        pair_files(frames, renamed[:3], "labels")
