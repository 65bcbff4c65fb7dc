"""Flow feature aggregation: sample frame features along a point's trajectory.

Each trajectory point x_{t+k} is projected into the camera of video frame t+k, in world
coordinates (the official code projects NDC points with world-space poses), and the
frame's feature map is sampled bilinearly there. Points behind the camera or outside the image are
flagged invalid; their features are zeroed and the flag is passed on to the attention. When the model
refines the camera poses, every projection uses the refined pose of its frame (see
:mod:`semflow_ns.model_components.pose_refinement`).
"""

from typing import Optional

import torch
from jaxtyping import Bool, Float, Int
from nerfstudio.cameras.camera_optimizers import CameraOptimizer
from nerfstudio.cameras.cameras import Cameras
from torch import Tensor, nn

from semflow_ns.field_components.frame_encoder import FrameFeatureBank
from semflow_ns.model_components.pose_refinement import corrected_camera_to_worlds, is_refining


class VideoCameras(nn.Module):
    """Pinhole (+ OpenCV distortion) cameras of the video frames, as buffers for projection.

    Args:
        cameras: one camera per video frame (or any cameras to project into, e.g. a render camera).
        pose_correction: the model's camera optimizer, whose correction of frame i moves camera i
            (differentiably: the projections pass gradients to the correction). None: the stored poses.
    """

    def __init__(self, cameras: Cameras, pose_correction: Optional[CameraOptimizer] = None) -> None:
        super().__init__()
        if pose_correction is not None and pose_correction.num_cameras != cameras.shape[0]:
            raise ValueError(
                f"the pose correction has {pose_correction.num_cameras} cameras, the video {cameras.shape[0]}"
            )
        # Held by reference, not as a submodule: its parameters belong to (and are saved with) the model's
        # camera optimizer only.
        self.__dict__["pose_correction"] = pose_correction
        self.register_buffer("camera_to_worlds", cameras.camera_to_worlds.float().clone(), persistent=False)
        intr = torch.cat([cameras.fx, cameras.fy, cameras.cx, cameras.cy], dim=-1).float()
        self.register_buffer("intrinsics", intr, persistent=False)
        size = torch.cat([cameras.width, cameras.height], dim=-1).float()
        self.register_buffer("sizes", size, persistent=False)
        dist = cameras.distortion_params
        self.register_buffer("distortion", None if dist is None else dist.float().clone(), persistent=False)

    @property
    def num_frames(self) -> int:
        return self.camera_to_worlds.shape[0]

    def refined_camera_to_worlds(self) -> Float[Tensor, "num_frames 3 4"]:
        """Pose of every frame with its correction applied (the stored poses when there is none)."""
        correction: Optional[CameraOptimizer] = self.__dict__["pose_correction"]
        if not is_refining(correction):
            return self.camera_to_worlds
        assert correction is not None
        frames = torch.arange(self.num_frames, device=self.camera_to_worlds.device)
        return corrected_camera_to_worlds(self.camera_to_worlds, correction(frames).to(self.camera_to_worlds))

    def project(
        self, points: Float[Tensor, "*bs 3"], frames: Int[Tensor, "*bs"]
    ) -> tuple[Float[Tensor, "*bs 2"], Float[Tensor, "*bs 1"]]:
        """Pixel coordinates (x right, y down; pixel centres at +0.5) and depth in front of the camera."""
        c2w = self.refined_camera_to_worlds()[frames]
        rotation, origin = c2w[..., :3, :3], c2w[..., :3, 3]
        local = torch.einsum("...ji,...j->...i", rotation, points - origin)  # world -> OpenGL camera
        depth = -local[..., 2:3]
        xy = torch.stack([local[..., 0], -local[..., 1]], dim=-1) / depth.clamp(min=1e-6)
        if self.distortion is not None:
            xy = distort(xy, self.distortion[frames])
        intr = self.intrinsics[frames]
        return xy * intr[..., :2] + intr[..., 2:], depth

    def inside(
        self, uv: Float[Tensor, "*bs 2"], depth: Float[Tensor, "*bs 1"], frames: Int[Tensor, "*bs"]
    ) -> Bool[Tensor, "*bs"]:
        size = self.sizes[frames]
        return (depth[..., 0] > 1e-4) & (uv >= 0).all(-1) & (uv <= size).all(-1)


def distort(xy: Float[Tensor, "*bs 2"], params: Float[Tensor, "*bs 6"]) -> Float[Tensor, "*bs 2"]:
    """OpenCV radial-tangential distortion of normalised image points (params k1 k2 k3 k4 p1 p2)."""
    x, y = xy[..., 0], xy[..., 1]
    k1, k2, k3, p1, p2 = params[..., 0], params[..., 1], params[..., 2], params[..., 4], params[..., 5]
    r2 = x * x + y * y
    radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    dx = 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    dy = p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return torch.stack([x * radial + dx, y * radial + dy], dim=-1)


class FlowFeatureAggregator(nn.Module):
    """Features of trajectory points, each looked up in its own frame."""

    def __init__(self, cameras: VideoCameras, bank: FrameFeatureBank) -> None:
        super().__init__()
        self.cameras = cameras
        self.bank = bank

    @property
    def feature_dim(self) -> int:
        return self.bank.encoder.out.out_channels

    def forward(
        self,
        points: Float[Tensor, "*bs 3"],
        frames: Int[Tensor, "*bs"],
        exists: Optional[Bool[Tensor, "*bs"]] = None,
        fresh: Optional[Int[Tensor, "num_fresh"]] = None,
    ) -> tuple[Float[Tensor, "*bs feat_dim"], Float[Tensor, "*bs 1"]]:
        """Features of world-space ``points`` in video frames ``frames`` and whether each lookup is valid.

        Args:
            points: trajectory points in world coordinates.
            frames: video frame of each point.
            exists: False where the frame lies outside the video (its lookup is marked invalid).
            fresh: in training, the frames to encode with gradients (see :class:`FrameFeatureBank`); None: all.
        """
        uv, depth = self.cameras.project(points, frames)
        valid = self.cameras.inside(uv, depth, frames)
        if exists is not None:
            valid = valid & exists
        feats = self.bank.lookup(frames, uv, self.cameras.sizes[frames], fresh)
        valid_f = valid[..., None].to(feats.dtype)
        return feats * valid_f, valid_f
