"""Flow-estimated motion masks (``semflow_ns.process.motion``): synthetic flows with a known answer, and the
real DAVIS clip against its ground-truth masks."""

import numpy as np
import pytest

from semflow_ns.data.format import MOTION_UNKNOWN, motion_levels
from semflow_ns.data.producers.optical_flow import FrameFlow, estimate_video_flow
from semflow_ns.process.motion import MotionOptions, background_residual, chained_flow, motion_mask

H, W = 60, 80
BOX = (slice(20, 36), slice(30, 50))
"""The moving object's pixels in every frame of the synthetic video."""


def synthetic_flows(num_frames: int = 5, pan: float = 0.0, object_speed: float = 0.0) -> list[FrameFlow]:
    """A background moving ``pan`` px right per frame and the object ``object_speed`` px down relative to it,
    both given on fixed pixels (only self-consistent over several frames when ``pan`` is 0). All flow passes
    the consistency check."""
    flows = []
    for i in range(num_frames):
        fwd = np.zeros((H, W, 2), np.float32)
        fwd[..., 0] = pan
        fwd[BOX[0], BOX[1], 1] = object_speed
        valid = np.ones((H, W), bool)
        last, first = i == num_frames - 1, i == 0
        flows.append(
            FrameFlow(None if last else fwd, None if last else valid, None if first else -fwd, None if first else valid)
        )
    return flows


def test_background_residual_is_zero_for_a_homography_and_large_on_the_object() -> None:
    flow = synthetic_flows(pan=2.0, object_speed=6.0)[0]
    assert flow.fwd is not None and flow.fwd_mask is not None
    residual = background_residual(flow.fwd, flow.fwd_mask, stride=2, threshold=0.5)
    assert residual is not None
    outside = np.ones((H, W), bool)
    outside[BOX] = False
    assert residual[outside].max() < 1e-3
    np.testing.assert_allclose(residual[BOX], 6.0, atol=1e-3)


def test_chained_flow_composes_the_one_frame_flows() -> None:
    flows = synthetic_flows(pan=2.0, object_speed=1.0)
    fwd = chained_flow(flows, 1, 3)
    bwd = chained_flow(flows, 4, -2)
    assert fwd is not None and bwd is not None
    np.testing.assert_allclose(fwd[0][5, 5], [6.0, 0.0], atol=1e-5)  # background: 3 frames of 2 px
    np.testing.assert_allclose(bwd[0][5, 5], [-4.0, 0.0], atol=1e-5)
    assert fwd[1][5, 5] and chained_flow(flows, 3, 2) is None  # frame 5 does not exist


def test_moving_object_is_moving_background_static_and_its_border_unknown() -> None:
    flows = synthetic_flows(object_speed=4.0)
    diagonal = np.hypot(H, W)
    options = MotionOptions()
    for index in range(len(flows)):
        mask = motion_mask(flows, index, options)
        assert mask.dtype == np.uint8 and mask.shape == (H, W)
        assert (mask[BOX] == 255).all()
        border = round(options.border_fraction * diagonal)
        far = np.ones((H, W), bool)
        far[
            BOX[0].start - border - 1 : BOX[0].stop + border + 1, BOX[1].start - border - 1 : BOX[1].stop + border + 1
        ] = False
        assert (mask[far] == 0).all()
        assert (mask[BOX[0].start - 1, BOX[1]] == MOTION_UNKNOWN).all()  # the band around the object


def test_slow_object_is_found_over_several_frames() -> None:
    """0.3 px per frame is under the threshold for one frame (0.5 px here) but not over three (0.9 px)."""
    flows = synthetic_flows(object_speed=0.3)
    diagonal = np.hypot(H, W)
    options = MotionOptions(moving_fraction=0.5 / diagonal, static_fraction=0.1 / diagonal)
    assert (motion_mask(flows, 1, options)[BOX] == 255).all()
    one_frame = MotionOptions(moving_fraction=0.5 / diagonal, static_fraction=0.1 / diagonal, gaps=(1,))
    assert not (motion_mask(flows, 1, one_frame)[BOX] == 255).any()
    assert not (motion_mask(flows, 1, one_frame)[BOX] == 0).any()  # not static either: unknown


def test_inconsistent_flow_is_never_static() -> None:
    flows = synthetic_flows(object_speed=0.0)
    for flow in flows:
        for mask in (flow.fwd_mask, flow.bwd_mask):
            if mask is not None:
                mask[:, :10] = False
    mask = motion_mask(flows, 2)
    assert (mask[:, :10] == MOTION_UNKNOWN).all() and (mask[:, 20:] == 0).all()


def test_motion_levels_reads_binary_and_three_level_masks() -> None:
    mask = np.array([[0, 255, MOTION_UNKNOWN, 84, 171, 100]], np.uint8)
    np.testing.assert_array_equal(motion_levels(mask), [[0, 1, -1, 0, 1, -1]])


@pytest.mark.slow
def test_car_is_never_static_and_mostly_moving_on_davis(davis) -> None:
    """On the real clip (camera panning with the car) the flow masks find the car without its labels."""
    import cv2

    images = sorted((davis / "images").glob("*.jpg"))[16:24]
    frames, truth = [], []
    for path in images:
        image = cv2.imread(str(path))[..., ::-1]
        frames.append(cv2.resize(image, (480, 270), interpolation=cv2.INTER_AREA))
        gt = cv2.imread(str(davis / "masks" / f"{path.stem}.png"), cv2.IMREAD_GRAYSCALE)
        truth.append(cv2.resize(gt, (480, 270), interpolation=cv2.INTER_NEAREST) > 127)
    flows = estimate_video_flow(frames, "medium", False, 1)
    for index, car in enumerate(truth):
        mask = motion_mask(flows, index)
        assert (mask[car] == 0).mean() < 0.02, index  # the car is (almost) never called static
        assert (mask[car] == 255).mean() > 0.5, index  # and mostly found moving
        assert (mask == 0).mean() > 0.3, index  # while much of the background is known static
