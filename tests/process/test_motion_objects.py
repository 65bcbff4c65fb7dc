"""Moving objects grouped from motion masks (``semflow_ns.process.objects``): made-up masks and flows of boxes
that cross, leave or enter the image, split, flicker, or do not move at all."""

from dataclasses import dataclass

import numpy as np

from semflow_ns.data.format import MOTION_UNKNOWN
from semflow_ns.data.producers.optical_flow import FrameFlow
from semflow_ns.process.objects import (
    ObjectOptions,
    carry_ids,
    find_objects,
    object_labels,
    object_pixels,
    track_objects,
)

H, W = 60, 80


@dataclass
class Box:
    """A box of ``size`` (h, w) at ``start`` (row, column) moving ``velocity`` (rows, columns) per frame, seen on
    frames ``first`` to ``last`` (inclusive)."""

    start: tuple[int, int]
    size: tuple[int, int]
    velocity: tuple[int, int] = (0, 0)
    first: int = 0
    last: int = 10**6

    def pixels(self, frame: int) -> np.ndarray:
        mask = np.zeros((H, W), bool)
        if self.first <= frame <= self.last:
            top, left = self.start[0] + self.velocity[0] * frame, self.start[1] + self.velocity[1] * frame
            mask[max(top, 0) : max(top + self.size[0], 0), max(left, 0) : max(left + self.size[1], 0)] = True
        return mask


def video(boxes: list[Box], frames: int) -> tuple[list[np.ndarray], list[FrameFlow]]:
    """Object masks and flows (each box's pixels move with it, later boxes in front; the rest is still)."""
    masks, flows = [], []
    for t in range(frames):
        mask, fwd = np.zeros((H, W), bool), np.zeros((H, W, 2), np.float32)
        for box in boxes:
            pixels = box.pixels(t)
            mask |= pixels
            fwd[pixels] = (box.velocity[1], box.velocity[0])
        valid = np.ones((H, W), bool)
        first, last = t == 0, t == frames - 1
        masks.append(mask)
        flows.append(FrameFlow(None if last else fwd, None if last else valid, None if first else -fwd, None if first else valid))  # fmt: skip
    return masks, flows


def ids_on(ids: np.ndarray, box: Box, frame: int) -> set[int]:
    return set(np.unique(ids[box.pixels(frame)]).tolist())


def test_two_objects_that_cross_keep_their_identities() -> None:
    """Left-to-right box in front of a right-to-left one, overlapping by a few rows while they pass."""
    ahead = Box((20, 2), (12, 10), (0, 4))
    behind = Box((28, 68), (12, 10), (0, -4))
    masks, flows = video([behind, ahead], 17)
    ids = track_objects(masks, flows)
    assert max(int(i.max()) for i in ids) == 2
    first_ahead, first_behind = ids_on(ids[0], ahead, 0), ids_on(ids[0], behind, 0)
    assert len(first_ahead) == 1 and len(first_behind) == 1 and first_ahead != first_behind
    assert ids_on(ids[16], ahead, 16) == first_ahead
    assert ids_on(ids[16], behind, 16) - first_ahead == first_behind  # the box behind, where the front one is not
    crossing = np.unique(ids[8][masks[8]]).tolist()
    assert sorted(crossing) == [1, 2]  # in the joint region each keeps its part


def test_an_object_that_leaves_the_image_ends_and_one_that_enters_starts() -> None:
    leaving = Box((10, 50), (10, 10), (0, 6))
    entering = Box((40, -12), (8, 12), (0, 5))
    masks, flows = video([leaving, entering], 10)
    ids = track_objects(masks, flows)
    assert max(int(i.max()) for i in ids) == 2
    (gone,) = ids_on(ids[0], leaving, 0)
    (arrived,) = ids_on(ids[5], entering, 5)
    assert gone != arrived
    assert all(not (i == gone).any() for i in ids[5:])  # out of the image from frame 5 on
    assert all(ids_on(i, leaving, t) == {gone} for t, i in enumerate(ids[:5]) if leaving.pixels(t).any())
    assert all(ids_on(i, entering, t) == {arrived} for t, i in enumerate(ids) if entering.pixels(t).any())


def test_flicker_and_short_lived_blobs_are_dropped() -> None:
    walker = Box((30, 10), (10, 10), (0, 2))
    flicker = Box((5, 70), (2, 2), first=4, last=4)  # 4 px on one frame
    blip = Box((5, 40), (6, 6), first=6, last=7)  # two frames only
    masks, flows = video([walker, flicker, blip], 10)
    ids = track_objects(masks, flows)
    assert all(set(np.unique(i).tolist()) <= {0, 1} for i in ids)
    assert all((ids[t][walker.pixels(t)] == 1).all() for t in range(10))
    assert not ids[4][flicker.pixels(4)].any() and not ids[6][blip.pixels(6)].any()


def test_an_object_split_in_two_stays_one() -> None:
    """A box hidden in its middle on frames 4-6 (a pole in front of it) is one object in two pieces there."""
    box = Box((20, 5), (10, 20), (0, 3))
    masks, flows = video([box], 10)
    for t in (4, 5, 6):
        left = box.start[1] + box.velocity[1] * t
        masks[t][:, left + 8 : left + 12] = False
    ids = track_objects(masks, flows)
    assert all(set(np.unique(i[m]).tolist()) == {1} for i, m in zip(ids, masks, strict=True))


def test_parts_that_touch_on_most_frames_are_one_object() -> None:
    """Two boxes apart at first, then side by side to the end (an object seen in two pieces at first)."""
    left = Box((20, 10), (10, 10), (0, 2))
    right = Box((20, 24), (10, 10), (0, 2))
    masks, flows = video([left, right], 12)
    for t in range(4):  # apart by 4 px on the first frames
        masks[t] = left.pixels(t) | right.pixels(t)
    for t in range(4, 12):
        masks[t] |= np.roll(left.pixels(t), 4, axis=1)  # the gap closes
    ids = track_objects(masks, flows, ObjectOptions(min_frames=3))
    assert max(int(i.max()) for i in ids) == 1


def test_nothing_moving_gives_no_object_and_background_labels() -> None:
    masks, flows = video([], 6)
    assert all(not i.any() for i in track_objects(masks, flows))
    levels = np.zeros((H, W), np.uint8)
    levels[:5] = MOTION_UNKNOWN
    assert not object_pixels(np.zeros((H, W, 3), np.uint8), levels).any()
    semantics, instances = object_labels(levels, np.zeros((H, W), np.int64))
    assert (semantics[5:] == 0).all() and (semantics[:5] == -1).all() and (instances[:5] == -1).all()


def test_object_labels_mark_objects_moving_and_leave_unknown_unlabelled() -> None:
    levels = np.full((H, W), MOTION_UNKNOWN, np.uint8)
    levels[:, :40] = 0
    levels[10:20, 50:60] = 255
    levels[40:45, 50:55] = 255  # moving, but in no object
    ids = np.zeros((H, W), np.int64)
    ids[10:20, 50:60] = 3
    semantics, instances = object_labels(levels, ids)
    assert (semantics[:, :40] == 0).all() and (instances[:, :40] == 0).all()
    assert (semantics[10:20, 50:60] == 1).all() and (instances[10:20, 50:60] == 3).all()
    assert (semantics[40:45, 50:55] == -1).all() and (semantics[:, 60:] == -1).all()


def test_colour_trims_the_flow_blur_and_never_takes_static_pixels() -> None:
    """The motion mask's moving region overflows a red square by 5 px; GrabCut keeps the square."""
    rng = np.random.default_rng(0)
    rgb = np.clip(rng.normal(110, 12, (H, W, 3)), 0, 255).astype(np.uint8)
    rgb[20:36, 30:46] = (200, 40, 40)
    levels = np.zeros((H, W), np.uint8)
    levels[12:44, 22:54] = MOTION_UNKNOWN
    levels[15:41, 25:51] = 255
    levels[0:3, 0:3] = 255  # a speck of flow noise on the static background: no colour of its own
    for size in (0, 40):  # full size, and a working image smaller than the frame
        found = object_pixels(rgb, levels, size)
        square = np.zeros((H, W), bool)
        square[20:36, 30:46] = True
        assert (found & square).sum() / (found | square).sum() > 0.85, size
        assert not (found & (levels == 0)).any()


def test_the_previous_frames_object_keeps_a_part_whose_motion_is_unknown() -> None:
    """Red half moving, blue half of unknown motion: alone, its colour is only known as not-moving; with the
    object of the frame before carried onto it, it stays part of the object."""
    rng = np.random.default_rng(0)
    rgb = np.clip(rng.normal(110, 12, (H, W, 3)), 0, 255).astype(np.uint8)
    rgb[20:36, 30:38], rgb[20:36, 38:46] = (200, 40, 40), (40, 40, 200)
    levels = np.zeros((H, W), np.uint8)
    levels[10:46, 20:56] = MOTION_UNKNOWN
    levels[20:36, 30:38] = 255
    whole = np.zeros((H, W), bool)
    whole[20:36, 30:46] = True
    assert not object_pixels(rgb, levels, 0)[20:36, 38:46].any()
    np.testing.assert_array_equal(object_pixels(rgb, levels, 0, prior=whole), whole)
    levels[:] = 0  # the prior never overrides static pixels
    assert not object_pixels(rgb, levels, 0, prior=whole).any()


def test_find_objects_follows_a_moving_patch_through_frames() -> None:
    box = Box((20, 6), (12, 12), (0, 3))
    masks, flows = video([box], 6)
    rng = np.random.default_rng(1)
    background = np.clip(rng.normal(110, 12, (H, W, 3)), 0, 255).astype(np.uint8)
    frames, levels = [], []
    for mask in masks:
        frame = background.copy()
        frame[mask] = (220, 200, 30)
        frames.append(frame)
        level = np.zeros((H, W), np.uint8)
        level[np.roll(mask, 2, axis=1) | mask] = MOTION_UNKNOWN  # a blurred trail
        level[mask] = 255
        levels.append(level)
    ids = find_objects(frames, levels, flows)
    assert all((i[m] == 1).all() and not i[~m].any() for i, m in zip(ids, masks, strict=True))


def test_carry_ids_follows_the_backward_flow_and_drops_what_leaves() -> None:
    ids = np.zeros((H, W), np.int64)
    ids[10:20, 0:10] = 7
    backward = np.zeros((H, W, 2), np.float32)
    backward[..., 0] = -5.0  # this frame's content was 5 px further left
    carried = carry_ids(ids, backward)
    assert (carried[10:20, 5:15] == 7).all() and not carried[:, :5].any()
    assert not carry_ids(ids, None).any()
