"""Projection into video frames and feature lookup along trajectories."""

import torch
from nerfstudio.cameras.camera_utils import get_distortion_params
from nerfstudio.cameras.cameras import Cameras

from semflow_ns.field_components.flow_aggregation import FlowFeatureAggregator, VideoCameras
from semflow_ns.field_components.frame_encoder import (
    FrameEncoderConfig,
    FrameFeatureBank,
    compact_ids,
    sample_feature_maps,
)


def make_cameras(num: int = 3, distortion: bool = False) -> Cameras:
    angles = torch.linspace(-0.3, 0.3, num)
    c2w = torch.zeros(num, 3, 4)
    for i, a in enumerate(angles):
        c, s = torch.cos(a), torch.sin(a)
        c2w[i, :3, :3] = torch.tensor([[c, 0, s], [0, 1, 0], [-s, 0, c]])
        c2w[i, :3, 3] = torch.tensor([0.3 * i, -0.1 * i, 2.0])
    dist = get_distortion_params(k1=-0.1, k2=0.02, p1=0.001, p2=-0.002).expand(num, 6) if distortion else None
    return Cameras(
        camera_to_worlds=c2w,
        fx=40.0,
        fy=42.0,
        cx=17.0,
        cy=11.0,
        width=32,
        height=24,
        distortion_params=dist,
        times=torch.linspace(0, 1, num)[:, None],
    )


def test_projection_inverts_nerfstudio_ray_generation():
    """A point on the ray of pixel (x, y) projects back to the pixel centre (x + 0.5, y + 0.5)."""
    for distortion in (False, True):
        cameras = make_cameras(distortion=distortion)
        video = VideoCameras(cameras)
        ys, xs = torch.meshgrid(torch.arange(0, 24, 5), torch.arange(0, 32, 7), indexing="ij")
        coords = torch.stack([ys.flatten(), xs.flatten()], dim=-1).float() + 0.5
        for frame in range(len(cameras)):
            rays = cameras.generate_rays(camera_indices=frame, coords=coords)
            points = rays.origins + 1.7 * rays.directions
            frames = torch.full((len(points),), frame)
            uv, depth = video.project(points, frames)
            assert torch.allclose(uv, coords.flip(-1), atol=2e-3 if distortion else 1e-4)
            assert (depth > 0).all()
            assert video.inside(uv, depth, frames).all()


def test_points_behind_or_outside_are_invalid():
    video = VideoCameras(make_cameras())
    c2w = video.camera_to_worlds[0]
    behind = c2w[:3, 3] + c2w[:3, 2]  # one unit along +z = behind an OpenGL camera
    far_right = c2w[:3, 3] - c2w[:3, 2] + 5.0 * c2w[:3, 0]
    points = torch.stack([behind, far_right])
    frames = torch.zeros(2, dtype=torch.long)
    uv, depth = video.project(points, frames)
    assert not video.inside(uv, depth, frames).any()


def test_feature_lookup_reads_the_right_pixel_of_the_right_frame():
    """Feature maps holding (x, y, frame) per texel: a lookup at a texel centre returns exactly those."""
    num, height, width = 3, 6, 8
    ys, xs = torch.meshgrid(torch.arange(height).float(), torch.arange(width).float(), indexing="ij")
    maps = torch.stack([torch.stack([xs, ys, torch.full_like(xs, f)]) for f in range(num)])
    image_size = torch.tensor([[16.0, 12.0]])  # the maps are at half the image resolution
    texel = torch.tensor([[3.0, 2.0], [0.0, 5.0], [7.0, 0.0], [2.5, 4.5]])
    uv = (texel + 0.5) * 2.0  # image pixel coordinates of texel centres
    slots = torch.tensor([0, 2, 1, 1])
    out = sample_feature_maps(maps.transpose(0, 1), slots, uv, image_size.expand(4, 2))
    assert torch.allclose(out[:, :2], texel, atol=1e-5)
    assert torch.equal(out[:, 2], slots.float())


def test_lookup_near_a_border_never_bleeds_into_the_next_frame():
    maps = torch.stack([torch.zeros(1, 4, 4), torch.ones(1, 4, 4)], dim=1)  # channel first: [1, 2, 4, 4]
    uv = torch.tensor([[2.0, 7.9], [2.0, 100.0]])  # bottom edge of frame 0, and far below it
    out = sample_feature_maps(maps, torch.zeros(2, dtype=torch.long), uv, torch.tensor([[8.0, 8.0]]).expand(2, 2))
    assert torch.equal(out, torch.zeros(2, 1))


def test_compact_ids_matches_unique():
    ids = torch.tensor([[4, 1, 4], [7, 1, 0]])
    used, slots = compact_ids(ids, 9)
    ref_used, ref_slots = torch.unique(ids, return_inverse=True)
    assert torch.equal(used, ref_used) and torch.equal(slots, ref_slots)


def test_aggregator_zeroes_invalid_tokens_and_flags_them():
    cameras = make_cameras()
    frames = torch.randint(0, 255, (3, 24, 32, 3), dtype=torch.uint8)
    bank = FrameFeatureBank(FrameEncoderConfig(feature_dim=5, hidden_dim=4), frames)
    aggregator = FlowFeatureAggregator(VideoCameras(cameras), bank)
    rays = cameras.generate_rays(camera_indices=1, coords=torch.tensor([[12.5, 16.5]]))
    visible = rays.origins + 2.0 * rays.directions
    behind = rays.origins - 2.0 * rays.directions
    points = torch.stack([visible, behind, visible], dim=1)  # (1, K=3, 3)
    token_frames = torch.tensor([[1, 1, 2]])
    exists = torch.tensor([[True, True, False]])
    feats, valid = aggregator(points, token_frames, exists)
    assert feats.shape == (1, 3, 5) and valid.shape == (1, 3, 1)
    assert valid[0, :, 0].tolist() == [1.0, 0.0, 0.0]
    assert torch.equal(feats[0, 1:], torch.zeros(2, 5))
    assert feats[0, 0].abs().sum() > 0
