"""Camera pose refinement during training, on top of nerfstudio's :class:`CameraOptimizer`.

Videos whose cameras come from a rough estimate (scenes marked ``approximate_poses``) are trained with
a learned correction per video frame. One correction serves every use of that frame's camera:

- the training rays of the frame (nerfstudio's ``CameraOptimizer.apply_to_raybundle``);
- the projection of trajectory points into the frame (flow feature aggregation) and of surface points
  into a neighbouring frame (induced optical flow), through :class:`~semflow_ns.field_components.
  flow_aggregation.VideoCameras`;
- renders of the frame's camera after training (evaluation images, ``ns-render dataset``, point-cloud
  export), recognised by the ``video_frame`` entry that the DataParsers put in the camera metadata.

nerfstudio 1.1.5 moves a camera by a correction ``[R | t]`` as follows (``apply_to_raybundle`` and
``apply_to_camera`` agree): the ray directions are rotated by ``R`` in world axes, about the camera centre,
and ``t`` is added to the centre in world axes. :func:`corrected_camera_to_worlds` and
:func:`corrected_rays` state that rule once for the rest of the plugin (``apply_to_camera`` only takes one
camera at a time); the tests check that they agree with nerfstudio's methods.

Every training step uses the whole correction tensor (its L2 penalty covers every frame), so the
parameter is used in each step, as DistributedDataParallel requires.

Frames left out of training (``--withheld-frames``) have no ray to anchor a correction of their own: the
semantic and flow losses that project points into them would move them freely (1.7 degrees after 600 steps on
a rotation-only DAVIS clip, against 0.1-0.2 for their trained neighbours), and their renders would then be
scored from a pose no image supports. :class:`VideoPoseOptimizer` gives them the correction interpolated in
time between their nearest trained frames instead.

Cameras that are not video frames (the viewer's free camera, camera paths, held-out views) have no
correction. nerfstudio's own ``cam_idx`` camera metadata is not used: the viewer sets it on every free
camera, and for the evaluation split it counts the evaluation images, not the video frames.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal, Optional

import torch
from jaxtyping import Float, Int
from nerfstudio.cameras.camera_optimizers import CameraOptimizer, CameraOptimizerConfig
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.cameras.lie_groups import exp_map_SE3, exp_map_SO3xR3
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.utils.rich_utils import CONSOLE
from torch import Tensor

from semflow_ns.data.dataparsers.metadata import VIDEO_FRAME_KEY

RefinementMode = Literal["auto", "off", "SO3xR3", "SE3"]


@dataclass
class PoseRefinementConfig(CameraOptimizerConfig):
    """nerfstudio's camera optimizer with one more mode, ``auto`` (the default).

    ``auto`` refines the poses (as ``SO3xR3``) of scenes whose transforms.json says ``"approximate_poses":
    true`` and leaves the poses of other scenes alone (as ``off``). ``off``, ``SO3xR3`` and ``SE3`` force
    nerfstudio's modes whatever the scene says.
    """

    mode: RefinementMode = "auto"  # type: ignore[assignment]
    """auto: refine (SO3xR3) when the scene marks its poses as approximate, else off. off / SO3xR3 / SE3:
    nerfstudio's modes (no refinement / rotation and translation apart / jointly on SE(3))."""

    def resolve(self, approximate_poses: bool) -> CameraOptimizerConfig:
        """A copy whose mode is one that nerfstudio's :class:`CameraOptimizer` knows (``auto`` decided)."""
        if self.mode != "auto":
            return dataclasses.replace(self)
        return dataclasses.replace(self, mode="SO3xR3" if approximate_poses else "off")


def is_refining(optimizer: Optional[CameraOptimizer]) -> bool:
    """Whether ``optimizer`` changes any pose (it exists and its mode is not ``off``)."""
    return optimizer is not None and optimizer.config.mode != "off"


class VideoPoseOptimizer(CameraOptimizer):
    """nerfstudio's camera optimizer for a video whose untrained frames take their trained neighbours' correction.

    The correction of a frame left out of training is interpolated linearly in time, in the optimizer's tangent
    space (``pose_adjustment``), between the nearest trained frames before and after it (the nearest one alone
    at either end of the video). Their own rows of ``pose_adjustment`` stay in the parameter (its L2 penalty
    keeps them at zero) but no correction reads them. With every frame trained it is nerfstudio's optimizer.

    Args:
        config: the resolved optimizer options (mode off, SO3xR3 or SE3).
        times: every video frame's time, in frame order.
        untrained: the frames without training rays.
    """

    def __init__(self, config: CameraOptimizerConfig, times: Float[Tensor, "num_frames"], untrained: list[int]) -> None:
        super().__init__(config, num_cameras=len(times), device="cpu")
        self.register_buffer("blend", untrained_blend(times, untrained), persistent=False)
        self.untrained = sorted(set(untrained))

    def forward(self, indices: Int[Tensor, "camera_indices"]) -> Float[Tensor, "camera_indices 3 4"]:
        if self.config.mode == "off" or not self.untrained:
            return super().forward(indices)
        adjustment = self.blend[indices] @ self.pose_adjustment
        return exp_map_SO3xR3(adjustment) if self.config.mode == "SO3xR3" else exp_map_SE3(adjustment)


def untrained_blend(times: Float[Tensor, "num_frames"], untrained: list[int]) -> Float[Tensor, "num_frames num_frames"]:
    """Row f: the weights of every frame's correction in frame f's (identity rows for trained frames; for an
    untrained one, linear in time between the nearest trained frames on either side, or the one that exists)."""
    times = times.detach().float().cpu()
    num_frames = len(times)
    skipped = set(untrained)
    trained = [f for f in range(num_frames) if f not in skipped]
    if not trained:
        raise ValueError("pose refinement needs at least one video frame with training rays")
    blend = torch.eye(num_frames)
    order = sorted(trained, key=lambda f: float(times[f]))
    trained_times = torch.stack([times[f] for f in order])
    for frame in skipped:
        blend[frame, frame] = 0.0
        slot = int(torch.searchsorted(trained_times, times[frame]))
        before, after = order[max(slot - 1, 0)], order[min(slot, len(order) - 1)]
        t0, t1 = float(times[before]), float(times[after])
        weight = 0.0 if t1 <= t0 else (float(times[frame]) - t0) / (t1 - t0)
        weight = min(max(weight, 0.0), 1.0)
        blend[frame, before] += 1.0 - weight
        blend[frame, after] += weight
    return blend


def setup_pose_refinement(
    config: PoseRefinementConfig,
    approximate_poses: bool,
    times: Float[Tensor, "num_frames"],
    untrained: Optional[list[int]] = None,
) -> CameraOptimizer:
    """The camera optimizer of a video's frames (``auto`` decided by ``approximate_poses``); says when it refines.
    Frames in ``untrained`` (left out of training) take corrections interpolated from trained ones."""
    num_frames = len(times)
    optimizer = VideoPoseOptimizer(config.resolve(approximate_poses), times, list(untrained or []))
    if is_refining(optimizer):
        CONSOLE.print(
            f"[bold]Semantic Flow:[/bold] refining the camera poses of the {num_frames} video frames "
            f"(camera optimizer mode {optimizer.config.mode})"
            + (
                f"; the {len(optimizer.untrained)} frames left out of training take their trained neighbours' "
                "corrections"
                if optimizer.untrained
                else ""
            )
        )
    return optimizer


def corrected_camera_to_worlds(
    camera_to_worlds: Float[Tensor, "*bs 3 4"], correction: Float[Tensor, "*bs 3 4"]
) -> Float[Tensor, "*bs 3 4"]:
    """Camera-to-world matrices moved by corrections ``[R | t]`` (rotation about the camera centre, in world
    axes; then translation in world axes), the rule of nerfstudio's camera optimizer (module docstring)."""
    rotation = correction[..., :3, :3] @ camera_to_worlds[..., :3, :3]
    return torch.cat([rotation, camera_to_worlds[..., :3, 3:] + correction[..., :3, 3:]], dim=-1)


def corrected_rays(
    origins: Float[Tensor, "*bs 3"], directions: Float[Tensor, "*bs 3"], correction: Float[Tensor, "*bs 3 4"]
) -> tuple[Float[Tensor, "*bs 3"], Float[Tensor, "*bs 3"]]:
    """Ray origins and directions of cameras moved by ``correction`` (same rule as
    :func:`corrected_camera_to_worlds`)."""
    directions = torch.einsum("...ij,...j->...i", correction[..., :3, :3], directions)
    return origins + correction[..., :3, 3], directions


def video_frames_of(metadata: Optional[dict]) -> Optional[Int[Tensor, "*bs"]]:
    """The ``video_frame`` entry of camera or ray metadata (without its trailing dimension), if any."""
    if not metadata or VIDEO_FRAME_KEY not in metadata:
        return None
    frames = metadata[VIDEO_FRAME_KEY]
    if not isinstance(frames, Tensor):
        return None
    return frames[..., 0].long()


def refine_camera(camera: Cameras, refined_camera_to_worlds: Float[Tensor, "num_frames 3 4"]) -> Cameras:
    """``camera`` with the refined pose of its video frame, for cameras that are video frames.

    Returns ``camera`` itself when none of its entries is a video frame. Otherwise a copy whose video frames
    sit at their refined poses and whose ``video_frame`` metadata is dropped (the correction is applied once).

    Args:
        camera: camera(s) to render; any batch shape.
        refined_camera_to_worlds: refined pose of every video frame.
    """
    frames = video_frames_of(camera.metadata)
    if frames is None:
        return camera
    metadata = {k: v for k, v in camera.metadata.items() if k != VIDEO_FRAME_KEY}  # type: ignore[union-attr]
    known = frames >= 0
    if not bool(known.any()):
        return dataclasses.replace(camera, metadata=metadata or None)
    refined = refined_camera_to_worlds.to(camera.camera_to_worlds)[frames.clamp(min=0).to(camera.device)]
    c2w = torch.where(known.to(camera.device)[..., None, None], refined, camera.camera_to_worlds)
    return dataclasses.replace(camera, camera_to_worlds=c2w, metadata=metadata or None)


def refine_ray_bundle(optimizer: CameraOptimizer, ray_bundle: RayBundle, training: bool) -> None:
    """Moves the rays of video frames to their frames' refined poses (in place, like nerfstudio).

    Training rays are identified by their camera index (the training split is the whole video, in
    order). Other rays (the evaluation batches, point-cloud export) are refined only where they carry
    a ``video_frame`` index >= 0; rays of the viewer, camera paths and held-out views are left alone.
    """
    if not is_refining(optimizer):
        return
    if training:
        optimizer.apply_to_raybundle(ray_bundle)
        return
    frames = video_frames_of(ray_bundle.metadata)
    if frames is None or not bool((frames >= 0).any()):
        return
    known = frames >= 0
    origins, directions = corrected_rays(
        ray_bundle.origins[known], ray_bundle.directions[known], optimizer(frames[known])
    )
    ray_bundle.origins = ray_bundle.origins.index_put((known,), origins)
    ray_bundle.directions = ray_bundle.directions.index_put((known,), directions)
