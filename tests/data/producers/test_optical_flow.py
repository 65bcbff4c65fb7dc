"""Tests of the DIS optical flow wrapper and the forward-backward consistency check."""

import cv2
import numpy as np
import pytest

from semflow_ns.data.producers.optical_flow import (
    consistency_mask,
    estimate_flow,
    estimate_video_flow,
    warp_by_flow,
    working_scale,
)


def smooth_texture(height: int, width: int, seed: int, cell: int = 6) -> np.ndarray:
    """Grey uint8 texture: random values on a ``cell``-pixel lattice, cubic-interpolated (no sub-cell detail)."""
    rng = np.random.default_rng(seed)
    rows, cols = height // cell + 2, width // cell + 2
    small = rng.random((rows, cols)).astype(np.float32)
    big = cv2.resize(small, (cols * cell, rows * cell), interpolation=cv2.INTER_CUBIC)
    return np.clip(big[:height, :width] * 255, 0, 255).astype(np.uint8)


def translated_pair(height: int, width: int, shift: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Two crops of one texture; the content of the first is at +shift (dx, dy) pixels in the second."""
    margin = 16
    cell = max(3, width // 24)
    canvas = smooth_texture(height + 2 * margin, width + 2 * margin, seed=3, cell=cell)
    moved = cv2.warpAffine(
        canvas, np.float32([[1, 0, shift[0]], [0, 1, shift[1]]]), canvas.shape[::-1], flags=cv2.INTER_CUBIC
    )
    crop = (slice(margin, margin + height), slice(margin, margin + width))
    return canvas[crop], moved[crop]


@pytest.mark.parametrize("size", [(96, 128), (24, 32)])
@pytest.mark.parametrize("shift", [(2.3, -1.4), (3.0, 1.0), (-1.0, 0.0)])
def test_recovers_known_translation(size: tuple[int, int], shift: tuple[float, float]) -> None:
    height, width = size
    img_a, img_b = translated_pair(height, width, shift)
    flow = estimate_flow(img_a, img_b)
    margin = 4
    interior = flow[margin:-margin, margin:-margin]
    error = np.linalg.norm(interior - np.asarray(shift, dtype=np.float32), axis=-1).mean()
    assert error < 0.3


def test_shapes_dtypes_and_colour_input() -> None:
    grey_a, grey_b = translated_pair(24, 32, (1.0, 0.0))
    rgb_a, rgb_b = (np.repeat(g[..., None], 3, axis=-1) for g in (grey_a, grey_b))
    flow_grey = estimate_flow(grey_a, grey_b, preset="fast")
    flow_rgb = estimate_flow(rgb_a, rgb_b, preset="fast")
    assert flow_grey.shape == (24, 32, 2) and flow_grey.dtype == np.float32
    np.testing.assert_allclose(flow_grey, flow_rgb)
    mask = consistency_mask(flow_grey, estimate_flow(grey_b, grey_a, preset="fast"))
    assert mask.shape == (24, 32) and mask.dtype == bool


def test_invalid_inputs_raise() -> None:
    image = np.zeros((24, 32), dtype=np.uint8)
    with pytest.raises(ValueError, match="preset"):
        estimate_flow(image, image, preset="slow")
    with pytest.raises(ValueError, match="size"):
        estimate_flow(image, np.zeros((24, 30), dtype=np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        estimate_flow(image.astype(np.float32), image)


def test_working_scale_upsamples_small_images_only() -> None:
    assert working_scale(24, 32) == 8
    assert working_scale(96, 128) == 2
    assert working_scale(480, 854) == 1


def test_warp_by_flow_reads_the_target_pixel() -> None:
    values = np.arange(12, dtype=np.float32).reshape(3, 4)
    flow = np.zeros((3, 4, 2), dtype=np.float32)
    flow[..., 0] = 1.0  # every pixel reads its right neighbour (edge repeated)
    np.testing.assert_array_equal(warp_by_flow(values, flow), np.concatenate([values[:, 1:], values[:, 3:]], axis=1))


def test_consistency_of_exact_inverse_flows() -> None:
    height, width, dx = 20, 30, 3.0
    fwd = np.zeros((height, width, 2), dtype=np.float32)
    fwd[..., 0] = dx
    mask = consistency_mask(fwd, -fwd)
    assert mask[:, : width - 3].all()
    assert not mask[:, width - 3 :].any()  # x + 3 > W - 0.5: the target leaves the image


def test_consistency_tolerance_is_configurable() -> None:
    fwd = np.full((10, 10, 2), 0.6, dtype=np.float32)
    bwd = np.zeros_like(fwd)  # error |fwd + bwd|^2 = 0.72 px^2 > default bound 0.01 * 0.72 + 0.5
    assert not consistency_mask(fwd, bwd)[2:-2, 2:-2].any()
    assert consistency_mask(fwd, bwd, alpha2=0.8)[2:-2, 2:-2].all()
    assert consistency_mask(fwd, bwd, alpha1=1.0)[2:-2, 2:-2].all()


def test_estimated_translation_is_consistent_inside_and_not_past_the_border() -> None:
    img_a, img_b = translated_pair(96, 128, (4.0, 0.0))
    mask = consistency_mask(estimate_flow(img_a, img_b), estimate_flow(img_b, img_a))
    assert mask[8:-8, 8:-8].mean() > 0.99
    assert not mask[:, -3:].any()


def test_occluded_region_is_inconsistent() -> None:
    background, square = smooth_texture(96, 128, seed=0), smooth_texture(32, 32, seed=1)
    img_a, img_b = background.copy(), background.copy()
    img_a[32:64, 40:72] = square
    img_b[32:64, 46:78] = square  # the square moves 6 px right and covers columns 72-77 of the background
    fwd, bwd = estimate_flow(img_a, img_b), estimate_flow(img_b, img_a)
    mask = consistency_mask(fwd, bwd)
    assert mask[34:62, 72:78].mean() < 0.4
    assert mask[36:60, 44:68].all()
    assert mask[4:28].all()
    np.testing.assert_allclose(fwd[36:60, 44:68].mean(axis=(0, 1)), [6.0, 0.0], atol=0.1)


def test_video_flow_has_no_flow_past_the_ends() -> None:
    frames = [translated_pair(24, 32, (float(i), 0.0))[1] for i in range(3)]
    flows = estimate_video_flow(frames, preset="fast", progress=False)
    assert len(flows) == 3
    assert flows[0].bwd is None and flows[0].bwd_mask is None
    assert flows[-1].fwd is None and flows[-1].fwd_mask is None
    for flow in flows[:-1]:
        assert flow.fwd is not None and flow.fwd.shape == (24, 32, 2) and flow.fwd.dtype == np.float32
        assert flow.fwd_mask is not None and flow.fwd_mask.dtype == bool
    for flow in flows[1:]:
        assert flow.bwd is not None and flow.bwd.shape == (24, 32, 2)
        assert flow.bwd_mask is not None and flow.bwd_mask.shape == (24, 32)
    assert flows[1].fwd is not None
    assert abs(float(np.median(flows[1].fwd[..., 0])) - 1.0) < 0.2
