"""Dataset that attaches labels, motion masks and optical flow to every image.

Every extra is an ``[H, W, C]`` tensor so that nerfstudio's pixel sampler picks it at the same
pixels as the colour. Missing data is encoded, not omitted, so that all images collate together:
unlabelled pixels (a frame without labels, or label-image pixels marked ``UNLABELLED_ID``) have class/instance
``-1`` (the losses' ignore index) and a missing flow direction (first/last frame) has a zero validity map.
"""

from __future__ import annotations

from typing import Optional

import cv2
import numpy as np
import torch
from nerfstudio.data.dataparsers.base_dataparser import DataparserOutputs
from nerfstudio.data.datasets.base_dataset import InputDataset
from PIL import Image

from semflow_ns.data.dataparsers.metadata import SceneInfo
from semflow_ns.data.dataparsers.multi_scene import SCENE_KEY
from semflow_ns.data.datasets.flow_labels import NO_LABEL, FlowLabels, flow_labels
from semflow_ns.data.format import (
    FrameRecord,
    motion_levels,
    read_depth_map,
    read_flow,
    read_label_image,
    read_sparse_depth,
)
from semflow_ns.data.producers.optical_flow import warp_by_flow

IGNORE_ID = -1
"""Label value of pixels without a label (ignored by the semantic losses)."""


class SemanticFlowDataset(InputDataset):
    """Images plus ``semantics``, ``instances``, ``motion`` and forward/backward ``flow_*`` per pixel.

    Batch keys (after pixel sampling, per ray):
        semantics: [N, 1] int64 class id, -1 if unlabelled.
        instances: [N, 1] int64 instance id (0 = none), -1 if unknown. Only when the scene has instances.
        motion: [N, 1] float32, 1 where the pixel belongs to a moving class (or motion mask), else 0;
            unlabelled pixels take the motion mask's value, -1 (unknown) where there is no motion mask.
        flow_fwd / flow_bwd: [N, 2] float32 optical flow in pixels to the next / previous video frame.
        flow_fwd_valid / flow_bwd_valid: [N, 1] float32 forward-backward consistency (0 where unknown).
        flow_fwd2 / flow_bwd2: [N, 2] float16 optical flow in pixels to the video frame two ahead / two behind,
            the one-frame flows chained (see :func:`chain_flows`; float16 as the flow files store them), with
            flow_fwd2_valid / flow_bwd2_valid: [N, 1] uint8, 1 where both links are consistent. Only in the
            training split of a single video.
        scene: [N, 1] uint8 index of the image's scene. Only in multi-scene runs (at most 256 scenes).
        flow_labels / flow_instances: [N, 1] int64, labels carried along the optical flow from the nearest
            labelled frame (-1: none; see :mod:`~semflow_ns.data.datasets.flow_labels`), and
        flow_label_hops: [N, 1] float32, the frames each travelled (inf: none), and
        flow_label_unchecked: [N, 1] float32, how many of those failed the forward-backward check. Only in the
            training split of a single scene where some frames have labels and others not; instances only when the
            scene has them.
        withheld: [N, 1] uint8, 1 on video frames left out of training (the pixel sampler never draws them).
            Only when the scene has such frames (``--withheld-frames``).
        depth: [N, 2] float32, the z-depth to supervise (world units) and its confidence in [0, 1] (0: none).
            Only when the scene's training frames have depth (see :func:`depth_targets`).
    """

    def __init__(self, dataparser_outputs: DataparserOutputs, scale_factor: float = 1.0):
        super().__init__(dataparser_outputs, scale_factor)
        self.frames: list[FrameRecord] = self.metadata["semflow_frames"]
        self.info: SceneInfo = self.metadata["semflow_scene"]
        self.dynamic_ids = torch.tensor(self.info.dynamic_class_ids, dtype=torch.long)
        # multi-scene runs: the scene of each image, for the pixel sampler (it spreads batches over the scenes)
        scenes = (self.cameras.metadata or {}).get(SCENE_KEY) if "semflow_scenes" in self.metadata else None
        self.scenes: Optional[torch.Tensor] = None if scenes is None else scenes[:, 0].to(torch.uint8)
        video = self.metadata.get("semflow_video")
        self.withheld_images = {video.image_filenames[i] for i in video.withheld} if video is not None else set()
        is_video = video is not None and [f.image for f in self.frames] == list(video.image_filenames)
        self.is_video = is_video and self.scenes is None
        """The images are the frames of one video, in order: frame t's neighbours are images t - 1 and t + 1."""
        carried = flow_labels(self.frames, instances=bool(self.info.instances)) if is_video else []
        self.flow_labels: list[Optional[FlowLabels]] = carried if any(c is not None for c in carried) else []

    def _size(self, image_idx: int) -> tuple[int, int]:
        camera = self.cameras[image_idx]
        return int(camera.height.item()), int(camera.width.item())

    def _ids(self, path, image_idx: int) -> torch.Tensor:
        height, width = self._size(image_idx)
        if path is None:
            return torch.full((height, width, 1), IGNORE_ID, dtype=torch.long)
        ids = read_label_image(path)
        if ids.shape != (height, width):
            ids = cv2.resize(ids.astype(np.int32), (width, height), interpolation=cv2.INTER_NEAREST)
        return torch.from_numpy(ids.astype(np.int64))[..., None]

    def _flow(self, path, image_idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        height, width = self._size(image_idx)
        if path is None:
            return torch.zeros(height, width, 2), torch.zeros(height, width, 1)
        flow, mask = read_flow(path)
        if flow.shape[:2] != (height, width):
            scale = np.array([width / flow.shape[1], height / flow.shape[0]], dtype=np.float32)
            flow = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR) * scale
            mask = cv2.resize(mask.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST) > 0
        return torch.from_numpy(flow.astype(np.float32)), torch.from_numpy(mask.astype(np.float32))[..., None]

    def _chained_flow(
        self, flow: torch.Tensor, valid: torch.Tensor, image_idx: int, step: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Optical flow of image ``image_idx`` to the video frame two ``step`` (+1 / -1) away, and its validity."""
        neighbour = image_idx + step
        if not valid.any() or not 0 <= neighbour < len(self.frames):
            return self._no_chained_flow(flow)
        record = self.frames[neighbour]
        onward, onward_valid = self._flow(record.flow_fwd if step > 0 else record.flow_bwd, neighbour)
        if onward.shape != flow.shape:  # a neighbour of another size: no chained flow
            return self._no_chained_flow(flow)
        chained, chained_valid = chain_flows(
            flow.numpy(), valid[..., 0].numpy(), onward.numpy(), onward_valid[..., 0].numpy()
        )
        return torch.from_numpy(chained.astype(np.float16)), torch.from_numpy(chained_valid.astype(np.uint8))[..., None]

    @staticmethod
    def _no_chained_flow(flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.zeros_like(flow, dtype=torch.float16), torch.zeros(*flow.shape[:-1], 1, dtype=torch.uint8)

    def _flow_labels(self, image_idx: int) -> dict[str, torch.Tensor]:
        height, width = self._size(image_idx)
        carried = self.flow_labels[image_idx]
        if carried is None:
            out = {"flow_labels": torch.full((height, width, 1), NO_LABEL, dtype=torch.long)}
            out["flow_label_hops"] = torch.full((height, width, 1), float("inf"))
            out["flow_label_unchecked"] = torch.zeros((height, width, 1))
            if self.info.instances:
                out["flow_instances"] = out["flow_labels"].clone()
            return out

        def resized(ids: np.ndarray) -> np.ndarray:
            if ids.shape == (height, width):
                return ids
            return cv2.resize(ids, (width, height), interpolation=cv2.INTER_NEAREST)

        out = {
            "flow_labels": torch.from_numpy(resized(carried.classes).astype(np.int64))[..., None],
            "flow_label_hops": torch.from_numpy(resized(carried.hops.astype(np.float32)))[..., None],
            "flow_label_unchecked": torch.from_numpy(resized(carried.unchecked.astype(np.float32)))[..., None],
        }
        if self.info.instances:
            instances = carried.instances if carried.instances is not None else np.full_like(carried.classes, NO_LABEL)
            out["flow_instances"] = torch.from_numpy(resized(instances).astype(np.int64))[..., None]
        return out

    def _mask_motion(self, frame: FrameRecord, image_idx: int) -> torch.Tensor:
        """Motion of the frame's motion mask (1 moving, 0 static, -1 unknown; all -1 without a mask)."""
        height, width = self._size(image_idx)
        if frame.motion_mask is None:
            return torch.full((height, width, 1), -1.0)
        with Image.open(frame.motion_mask) as image:
            mask = np.asarray(image.convert("L").resize((width, height), Image.Resampling.NEAREST))
        return torch.from_numpy(motion_levels(mask))[..., None]

    def _motion(
        self, frame: FrameRecord, semantics: torch.Tensor, image_idx: int, carried: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """The labels' moving classes where there are labels; the motion mask on unlabelled frames and pixels, and
        moving wherever ``carried`` (labels carried along the optical flow, ``NO_LABEL`` where they are not to be
        trusted) has a moving class: the mask missed it."""
        if frame.semantics is None:
            motion = self._mask_motion(frame, image_idx)
        else:
            motion = torch.isin(semantics, self.dynamic_ids).float()
            unlabelled = semantics == IGNORE_ID
            if unlabelled.any():
                motion = torch.where(unlabelled, self._mask_motion(frame, image_idx), motion)
        if carried is not None:
            moving = (semantics == IGNORE_ID) & torch.isin(carried, self.dynamic_ids)
            motion = torch.where(moving, 1.0, motion)
        return motion

    def get_metadata(self, data: dict) -> dict[str, torch.Tensor]:
        image_idx = data["image_idx"]
        frame = self.frames[image_idx]
        semantics = self._ids(frame.semantics, image_idx)
        carried = self._flow_labels(image_idx) if self.flow_labels else {}
        checked = None  # only a carry that passed every forward-backward check marks a pixel moving
        if carried:
            checked = carried["flow_labels"].masked_fill(carried["flow_label_unchecked"] > 0, NO_LABEL)
        out = {"semantics": semantics, "motion": self._motion(frame, semantics, image_idx, checked)}
        out.update(carried)
        if self.info.instances:
            out["instances"] = self._ids(frame.instances, image_idx)
        out["flow_fwd"], out["flow_fwd_valid"] = self._flow(frame.flow_fwd, image_idx)
        out["flow_bwd"], out["flow_bwd_valid"] = self._flow(frame.flow_bwd, image_idx)
        if self.is_video:
            for key, step in (("flow_fwd", 1), ("flow_bwd", -1)):
                out[f"{key}2"], out[f"{key}2_valid"] = self._chained_flow(
                    out[key], out[f"{key}_valid"], image_idx, step
                )
        if self.scenes is not None:
            out["scene"] = torch.full((*self._size(image_idx), 1), int(self.scenes[image_idx]), dtype=torch.uint8)
        if self.info.has_depth:
            out["depth"] = torch.from_numpy(depth_targets(frame, self._size(image_idx)))
        if self.withheld_images:
            withheld = int(frame.image in self.withheld_images)
            out["withheld"] = torch.full((*self._size(image_idx), 1), withheld, dtype=torch.uint8)
        return out


def chain_flows(
    first: np.ndarray, first_valid: np.ndarray, second: np.ndarray, second_valid: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Flow over two frame intervals: ``first`` (frame a -> b) followed by ``second`` (b -> c) read where each pixel
    lands in b, ``first + second(x + first(x))``, [H, W, 2] float32; valid [H, W] bool where ``first`` is valid,
    lands inside frame b, and all four pixels of b around the landing point have a valid ``second``."""
    height, width = first.shape[:2]
    chained = first + warp_by_flow(second, first)
    around = warp_by_flow(second_valid.astype(np.float32), first) > 0.999
    cols = np.arange(width, dtype=np.float32)[None, :] + first[..., 0]
    rows = np.arange(height, dtype=np.float32)[:, None] + first[..., 1]
    inside = (cols >= 0) & (cols <= width - 1) & (rows >= 0) & (rows <= height - 1)
    return chained.astype(np.float32), first_valid.astype(bool) & around & inside


def depth_targets(frame: FrameRecord, size: tuple[int, int]) -> np.ndarray:
    """[H, W, 2] float32 at ``size`` (h, w): the z-depth to supervise at each pixel and its confidence (0 where
    there is none).

    A depth map (``depth_path``) gives every measured pixel confidence 1. Sparse SfM depths
    (``sparse_depth_path``) go to the pixel that holds each point, with confidence 1 / (1 + e²) for a
    reprojection error of e pixels (0.2 px: 0.96, 1 px: 0.5, 3 px: 0.1); where several points share a pixel the
    most confident one is kept. The map wins where a frame has both. Both are read at the frame's own size and
    resized to ``size`` (a dataset at another scale: points moved, maps nearest).
    """
    height, width = size
    own = (frame.intrinsics.w, frame.intrinsics.h)
    out = np.zeros((height, width, 2), dtype=np.float32)
    if frame.sparse_depth is not None:
        points = read_sparse_depth(frame.sparse_depth, own)
        cols = np.clip((points["xy"][:, 0] * width / own[0]).astype(np.int64), 0, width - 1)
        rows = np.clip((points["xy"][:, 1] * height / own[1]).astype(np.int64), 0, height - 1)
        confidence = 1.0 / (1.0 + points["error"] ** 2)
        order = np.argsort(confidence)  # the most confident point of a pixel is written last
        out[rows[order], cols[order], 0] = points["depth"][order]
        out[rows[order], cols[order], 1] = confidence[order]
    if frame.depth is not None:
        depth = read_depth_map(frame.depth, own)
        if depth.shape != (height, width):
            depth = cv2.resize(depth, (width, height), interpolation=cv2.INTER_NEAREST)
        measured = depth > 0
        out[measured, 0], out[measured, 1] = depth[measured], 1.0
    return out
