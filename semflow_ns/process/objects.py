"""Moving objects from the flow motion masks, for videos without labels.

``semflow-process-data`` without ``--labels`` still knows what moves: the flow motion masks
(:mod:`semflow_ns.process.motion`). This module groups their moving pixels into objects followed through the
video, which the scene then stores as instances of a ``moving`` class over a static ``background`` class.

1. **Shapes.** The moving regions of a motion mask are blurred by the flow (a textureless surface next to a
   moving object takes its flow). One GrabCut step (:func:`object_pixels`) takes the outlines from colour: the
   colour models of "moving" and "not moving" come from the motion mask alone (moving pixels as probable
   object, unknown ones as probable background, static ones as fixed background), and one graph cut splits
   the frame. The previous frame's objects, carried along the flow, count as probable object too where the
   motion is unknown (a subject that slows down stays whole). Pixels the motion mask calls static never join
   an object; parts without any moving pixel are dropped.
2. **Tracks.** Frame by frame, the object ids of frame ``t - 1`` are carried along the backward flow of frame
   ``t`` (:func:`carry_ids`). A connected region of frame ``t`` continues every track that has at least
   ``min_overlap`` of its carried pixels in it, or that covers ``min_overlap`` of the region (a majority
   either way, so that splits and merges link too). A region that continues no track starts one (an object
   entering the image, or starting to move); a track whose pixels leave the image ends.
3. **Meeting objects.** A region continued by several tracks that have each been followed for ``min_frames``
   frames holds objects that touch or cross: its pixels go to the nearest pixel carried from each of them,
   and they keep their identities. Younger tracks in such a region (flicker next to an object) join the one
   with most pixels there. Two tracks that share a region on more than ``shared_fraction`` of the frames in
   which both are seen are parts of one object and are joined (union-find over all the links).
4. **Clean-up.** Tracks seen on fewer than ``min_frames`` frames, or smaller on average than
   ``min_area_fraction`` of the image, are dropped; the rest are numbered 1, 2, ... in order of appearance.

Every threshold is a ratio (of overlaps, of the image size) or a number of frames tied to the motion masks'
frame gaps, never a count of pixels, so the result hardly depends on the resolution; none was fitted to a
particular clip. Shadows, reflections and waves that move with an object belong to it: motion cannot tell
them apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from semflow_ns.data.producers.optical_flow import FrameFlow

SEED = 0
"""Seed of OpenCV's random numbers before each GrabCut step, so that a video always gives the same objects."""


@dataclass(frozen=True)
class ObjectOptions:
    """Thresholds of the grouping: ratios of overlaps and of the image size, and numbers of frames."""

    min_overlap: float = 0.5
    """A region continues a track when it holds this share of the track's carried pixels, or the carried
    pixels cover this share of the region (a majority)."""
    min_frames: int = 3
    """Tracks seen on fewer frames are dropped, and only tracks followed this long keep their identity when
    they meet another (the motion masks compare frames up to 3 apart)."""
    min_area_fraction: float = 0.001
    """Tracks smaller on average than this fraction of the image are dropped (twice the smallest moving
    region of the motion masks)."""
    shared_fraction: float = 0.5
    """Two tracks sharing a region on more than this share of the frames where both are seen are one object."""
    refine_size: int = 480
    """The colour step runs on frames shrunk to at most this many pixels on the longer side: it bounds the cost,
    and the graph cut's smoothness (per pair of neighbouring pixels) then acts alike at any --max-size."""


def object_pixels(
    rgb: np.ndarray, levels: np.ndarray, refine_size: int = 480, prior: np.ndarray | None = None
) -> np.ndarray:
    """bool [H, W]: the pixels of moving objects in one frame (step 1 of the module docstring).

    Args:
        rgb: uint8 [H, W, 3] frame.
        levels: uint8 [H, W] motion mask (0 static, 255 moving, 128 unknown).
        refine_size: longer side of the working image of the graph cut (0: the frame's size).
        prior: bool [H, W], the previous frame's object pixels carried into this one: probably object too
            where the motion is unknown.
    """
    moving = levels == 255
    if not moving.any():
        return moving
    height, width = levels.shape
    scale = min(1.0, refine_size / max(height, width)) if refine_size > 0 else 1.0
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small_rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA) if scale < 1 else rgb
    trimap = np.full(levels.shape, cv2.GC_PR_BGD, np.uint8)
    if prior is not None:
        trimap[prior] = cv2.GC_PR_FGD
    trimap[levels == 0] = cv2.GC_BGD
    trimap[moving] = cv2.GC_PR_FGD
    if scale < 1:
        trimap = cv2.resize(trimap, size, interpolation=cv2.INTER_NEAREST)
    if not (trimap == cv2.GC_PR_FGD).any() or (trimap == cv2.GC_PR_FGD).all():
        found = moving
    else:
        models = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        bgr = np.ascontiguousarray(small_rgb[..., ::-1])
        cv2.setRNGSeed(SEED)  # GrabCut seeds its colour models with k-means on OpenCV's global random numbers
        cv2.grabCut(bgr, trimap, None, models[0], models[1], 1, cv2.GC_INIT_WITH_MASK)
        found = (trimap == cv2.GC_FGD) | (trimap == cv2.GC_PR_FGD)
        if scale < 1:
            found = cv2.resize(found.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST) > 0
    found &= levels != 0
    count, parts = cv2.connectedComponents(found.astype(np.uint8), connectivity=8)
    supported = np.zeros(count, dtype=bool)
    supported[np.unique(parts[moving & found])] = True
    supported[0] = False
    return supported[parts]


def find_objects(
    frames: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    flows: Sequence[FrameFlow],
    options: ObjectOptions = ObjectOptions(),
) -> list[np.ndarray]:
    """Object ids of every frame of a video (int64 [H, W], 0 off the objects, 1..K the objects).

    Args:
        frames: uint8 [H, W, 3] video frames.
        masks: their uint8 [H, W] motion masks (:func:`semflow_ns.process.motion.motion_mask`).
        flows: their optical flow.
    """
    pixels: list[np.ndarray] = []
    for index, (rgb, levels) in enumerate(zip(frames, masks, strict=True)):
        prior = None
        if pixels:
            prior = carry_ids(pixels[-1].astype(np.int64), flows[index].bwd) > 0
        pixels.append(object_pixels(rgb, levels, options.refine_size, prior))
    return track_objects(pixels, flows, options)


def carry_ids(ids: np.ndarray, backward: np.ndarray | None) -> np.ndarray:
    """int [H, W]: the ids of the previous frame carried into this one along this frame's backward flow
    (nearest pixel; 0 where the flow leaves the image or is missing)."""
    if backward is None:
        return np.zeros_like(ids)
    height, width = ids.shape
    ys, xs = np.mgrid[0:height, 0:width]
    src_x = np.rint(xs + backward[..., 0]).astype(np.int64)
    src_y = np.rint(ys + backward[..., 1]).astype(np.int64)
    inside = (src_x >= 0) & (src_x < width) & (src_y >= 0) & (src_y < height)
    out = np.zeros_like(ids)
    out[inside] = ids[src_y[inside], src_x[inside]]
    return out


class _Tracks:
    """Union-find over track ids, with the first frame of each set and the regions that tracks shared."""

    def __init__(self) -> None:
        self.parent: list[int] = [0]
        self.first: list[int] = [0]
        self.shared: list[tuple[int, int, int]] = []
        """(track, track, frame) for every region split between two established tracks."""

    def new(self, frame: int) -> int:
        self.parent.append(len(self.parent))
        self.first.append(frame)
        return len(self.parent) - 1

    def find(self, track: int) -> int:
        while self.parent[track] != track:
            self.parent[track] = self.parent[self.parent[track]]
            track = self.parent[track]
        return track

    def union(self, a: int, b: int) -> int:
        a, b = self.find(a), self.find(b)
        if a != b:
            keep, drop = (a, b) if self.first[a] <= self.first[b] else (b, a)
            self.parent[drop] = keep
            a = keep
        return a

    def roots(self, ids: np.ndarray) -> np.ndarray:
        lookup = np.array([self.find(t) for t in range(len(self.parent))], dtype=ids.dtype)
        return lookup[ids]


def _continued(region: np.ndarray, carried: np.ndarray, areas: dict[int, int], overlap: float) -> list[int]:
    """Tracks (carried ids) that ``region`` continues, most pixels first."""
    ids, counts = np.unique(carried[region & (carried > 0)], return_counts=True)
    size = int(region.sum())
    found = [(int(c), int(t)) for t, c in zip(ids, counts, strict=True) if c >= overlap * min(size, areas[int(t)])]
    return [t for _, t in sorted(found, reverse=True)]


def _split(region: np.ndarray, carried: np.ndarray, tracks: list[int]) -> np.ndarray:
    """Ids [H, W] of ``region``'s pixels: the track of the nearest pixel carried from one of ``tracks``."""
    distances = []
    for track in tracks:
        seeds = (region & (carried == track)).astype(np.uint8)
        distances.append(cv2.distanceTransform(1 - seeds, cv2.DIST_L2, 3))
    nearest = np.asarray(tracks)[np.argmin(np.stack(distances), axis=0)]
    return np.where(region, nearest, 0)


def _link_frame(tracks: _Tracks, mask: np.ndarray, carried: np.ndarray, frame: int, options: ObjectOptions):
    """Track ids [H, W] of the object pixels ``mask`` of ``frame`` (0 elsewhere), given the ids carried from
    the frame before (steps 2-3 of the module docstring)."""
    count, regions = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    out = np.zeros(mask.shape, dtype=np.int64)
    for index in range(1, count):
        region = regions == index
        carried = tracks.roots(carried)  # earlier regions of this frame may have joined tracks
        areas = dict(zip(*(v.tolist() for v in np.unique(carried, return_counts=True)), strict=True))
        continued = list(dict.fromkeys(tracks.find(t) for t in _continued(region, carried, areas, options.min_overlap)))
        if not continued:
            out[region] = tracks.new(frame)
            continue
        established = [t for t in continued if frame - tracks.first[t] >= options.min_frames]
        if len(established) < 2:
            keep = established[0] if established else continued[0]
            for track in continued:
                keep = tracks.union(keep, track)
            out[region] = keep
            continue
        for track in continued:
            if track not in established:
                tracks.union(established[0], track)
        tracks.shared += [(a, b, frame) for i, a in enumerate(established) for b in established[i + 1 :]]
        out += _split(region, carried, established)
    return out


def _join_shared(tracks: _Tracks, ids: list[np.ndarray], fraction: float) -> None:
    """Joins tracks that shared a region on more than ``fraction`` of the frames where both are seen."""
    shared: dict[tuple[int, int], set[int]] = {}
    for a, b, frame in tracks.shared:
        a, b = sorted((tracks.find(a), tracks.find(b)))
        if a != b:
            shared.setdefault((a, b), set()).add(frame)
    present = [set(np.unique(tracks.roots(frame_ids)).tolist()) for frame_ids in ids]
    for (a, b), frames in sorted(shared.items()):
        together = sum(1 for seen in present if a in seen and b in seen)
        if len(frames) > fraction * max(together, 1):
            tracks.union(a, b)


def track_objects(
    masks: Sequence[np.ndarray], flows: Sequence[FrameFlow], options: ObjectOptions = ObjectOptions()
) -> list[np.ndarray]:
    """Object ids of every frame: int64 [H, W], 0 off the objects, 1..K the objects (steps 2-4).

    Args:
        masks: bool [H, W] per frame, the object pixels (:func:`object_pixels`).
        flows: the optical flow of each frame (the backward flow carries the ids from frame to frame).
    """
    tracks = _Tracks()
    ids: list[np.ndarray] = []
    for frame, mask in enumerate(masks):
        previous = ids[-1] if ids else np.zeros(mask.shape, dtype=np.int64)
        carried = carry_ids(previous, flows[frame].bwd if frame > 0 else None)
        ids.append(_link_frame(tracks, mask, carried, frame, options))
    _join_shared(tracks, ids, options.shared_fraction)
    ids = [tracks.roots(frame_ids) for frame_ids in ids]
    frames: dict[int, int] = {}
    area: dict[int, int] = {}
    for frame_ids in ids:
        for track, pixels in zip(*np.unique(frame_ids[frame_ids > 0], return_counts=True), strict=True):
            frames[int(track)] = frames.get(int(track), 0) + 1
            area[int(track)] = area.get(int(track), 0) + int(pixels)
    image = masks[0].size if masks else 1
    kept = [
        t
        for t in frames
        if frames[t] >= options.min_frames and area[t] / frames[t] >= options.min_area_fraction * image
    ]
    number = np.zeros(len(tracks.parent), dtype=np.int64)
    for new, track in enumerate(sorted(kept, key=lambda t: tracks.first[t]), start=1):
        number[track] = new
    return [number[frame_ids] for frame_ids in ids]


def object_labels(levels: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(class ids, instance ids), int64 [H, W], of one frame of a scene labelled from motion.

    Object ``k`` gets class 1 (``moving``) and instance ``k``; pixels the motion mask calls static get class 0
    (``background``) and instance 0; every other pixel (motion unknown, or moving but in no object) gets -1: no
    label, so the losses skip it and its motion stays the motion mask's.
    """
    semantics = np.full(levels.shape, -1, dtype=np.int64)
    instances = np.full(levels.shape, -1, dtype=np.int64)
    semantics[levels == 0], instances[levels == 0] = 0, 0
    semantics[ids > 0], instances[ids > 0] = 1, ids[ids > 0]
    return semantics, instances
