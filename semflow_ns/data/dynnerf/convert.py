"""Converting a DynNeRF/NSFF scene folder into a semflow scene in a cache folder (the input is only read).

The converted scene lives in ``<cache>/<scene name>-<fingerprint>/``, where the fingerprint hashes the
conversion options and the content of every input file, so an unchanged input is converted once and a
changed one is converted again. The default cache is ``$SEMFLOW_CACHE_DIR/dynnerf`` or
``~/.cache/semflow_ns/dynnerf``. Scenes are written into a hidden staging folder and renamed into place.

Conventions applied (see :mod:`semflow_ns.data.dynnerf.llff` and :mod:`semflow_ns.data.producers.scene_geometry`): LLFF axes
to OpenGL, DynNeRF bound scaling and LLFF recentring, focal length scaled to the used resolution with the
principal point at the image centre, times i / (N - 1), ``unbounded: true``; the similarity from the
``poses_bounds.npy`` world to the scene's is ``applied_transform`` (nerfstudio's 3x4), so that nerfstudio's own
``nerfstudio-data`` reads the converted scene too.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Optional

import cv2
import numpy as np
from rich.console import Console

from semflow_ns.data.dynnerf.layout import DynNeRFLayout, DynNeRFOptions, read_layout
from semflow_ns.data.format import (
    SCENE_FILE,
    FrameRecord,
    Intrinsics,
    SceneDescription,
    SceneFormatError,
    image_size,
    read_flow,
    save_scene,
)
from semflow_ns.data.producers.files import fingerprint
from semflow_ns.data.producers.labels import grey_values, open_label, read_label_ids
from semflow_ns.data.producers.optical_flow import FrameFlow, estimate_video_flow, progress_bar
from semflow_ns.data.producers.scene_files import read_rgb, write_flow_files, write_frame_files
from semflow_ns.data.producers.scene_geometry import forward_facing_normalization, unbounded_scene_range

CONVERTER_VERSION = 2
"""Bumped whenever the converted content changes, so that cached conversions are redone."""
CACHE_ENV = "SEMFLOW_CACHE_DIR"


def default_cache_dir() -> Path:
    """``$SEMFLOW_CACHE_DIR/dynnerf`` if the variable is set, else ``~/.cache/semflow_ns/dynnerf``."""
    base = os.environ.get(CACHE_ENV)
    return (Path(base).expanduser() if base else Path.home() / ".cache" / "semflow_ns") / "dynnerf"


def _frames(layout: DynNeRFLayout, factor: int, out: Path) -> tuple[list[Path], list[np.ndarray]]:
    """Writes the frames at the working resolution into ``out/images``; returns their paths and pixels."""
    paths, pixels = [], []
    for i, source in enumerate(layout.images or layout.full_images or []):
        rgb = read_rgb(source)
        if layout.images is None:
            size = (max(1, round(rgb.shape[1] / factor)), max(1, round(rgb.shape[0] / factor)))
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        paths.append(write_frame_files(out, f"{i:05d}", rgb if layout.images is None else source)["image"])
        pixels.append(rgb)
    return paths, pixels


def _intrinsics(layout: DynNeRFLayout, width: int, height: int, console: Console) -> list[Intrinsics]:
    """Pinhole intrinsics at the used resolution: hwf's focal length scaled by width / hwf width, centred."""
    hwf_h, hwf_w = float(layout.cameras.hwf[0, 0]), float(layout.cameras.hwf[0, 1])
    if abs(height / width - hwf_h / hwf_w) > 0.01 * hwf_h / hwf_w:
        console.print(
            f"[yellow]{layout.root / 'poses_bounds.npy'}: hwf says {hwf_w:g}x{hwf_h:g} px but the frames are "
            f"{width}x{height} (another aspect ratio); the focal length is scaled by the width ratio[/yellow]"
        )
    out = []
    for hwf in layout.cameras.hwf:
        focal = float(hwf[2]) * width / float(hwf[1])
        out.append(Intrinsics(fl_x=focal, fl_y=focal, cx=width / 2.0, cy=height / 2.0, w=width, h=height))
    return out


def _label(
    layout: DynNeRFLayout, options: DynNeRFOptions, path: Path, frame: Path, size: tuple[int, int]
) -> np.ndarray:
    labelmap = layout.label_sources[0] if layout.label_sources else None
    full = (
        image_size(layout.full_images[0])
        if layout.full_images
        else (int(layout.cameras.hwf[0, 1]), int(layout.cameras.hwf[0, 0]))
    )
    found = image_size(path)
    if found != size and found != full and not options.resize_labels:
        raise SceneFormatError(
            f"{path}: label is {found} (w, h) but its frame {frame.name} is {size} (full resolution {full}); "
            "pass --resize-labels to resize labels with nearest neighbour"
        )
    ids = read_label_ids(path, "color", layout.classes, labelmap)
    if found != size:
        ids = cv2.resize(ids.astype(np.int32), size, interpolation=cv2.INTER_NEAREST).astype(np.int64)
    return ids


def _motion_mask(path: Path, size: tuple[int, int]) -> np.ndarray:
    """bool [H, W] at ``size`` (w, h): True where the mask is non-zero."""
    values = grey_values(open_label(path).convert("L"), path)
    mask = (values > 0).astype(np.uint8) * 255
    return (cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST) if mask.shape[::-1] != size else mask) > 0


def _resized_flow(path: Path, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    flow, mask = read_flow(path)
    if flow.shape[1::-1] != size:
        scale = np.array([size[0] / flow.shape[1], size[1] / flow.shape[0]], dtype=np.float32)
        flow = cv2.resize(flow, size, interpolation=cv2.INTER_LINEAR) * scale
        mask = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    return flow, mask


def _flows(layout: DynNeRFLayout, pixels: list[np.ndarray], options: DynNeRFOptions) -> list[FrameFlow]:
    """Optical flow of every frame: read from flow/ (resized to the frames) or estimated."""
    if layout.flows is None:
        return estimate_video_flow(pixels, preset=options.flow_preset, progress=False)
    size = (pixels[0].shape[1], pixels[0].shape[0])
    flows = []
    for fwd, bwd in layout.flows:
        fwd_flow, fwd_mask = _resized_flow(fwd, size) if fwd is not None else (None, None)
        bwd_flow, bwd_mask = _resized_flow(bwd, size) if bwd is not None else (None, None)
        flows.append(FrameFlow(fwd_flow, fwd_mask, bwd_flow, bwd_mask))
    return flows


def convert_layout(layout: DynNeRFLayout, options: DynNeRFOptions, out: Path, console: Console) -> SceneDescription:
    """Writes the semflow scene of a checked DynNeRF layout into the empty folder ``out``."""
    paths, pixels = _frames(layout, options.downscale_factor, out)
    height, width = pixels[0].shape[:2]
    intrinsics = _intrinsics(layout, width, height, console)
    norm = forward_facing_normalization(layout.cameras.camera_to_world, layout.cameras.bounds[:, 0])
    poses, bounds = norm.poses(layout.cameras.camera_to_world), layout.cameras.bounds * norm.scale
    box, near, far = unbounded_scene_range(poses, intrinsics, bounds)
    if layout.flows is None:
        console.print(f"{layout.root}: no complete flow/ folder; estimating optical flow (DIS {options.flow_preset})")
    flows = write_flow_files(out, [f"{i:05d}" for i in range(len(paths))], _flows(layout, pixels, options))
    frames = []
    with progress_bar(console.is_terminal and not console.quiet) as bar:
        task = bar.add_task("Converting DynNeRF frames", total=len(paths))
        for i, path in enumerate(paths):
            labels = layout.labels[i], layout.motion_masks[i]
            files = write_frame_files(
                out, f"{i:05d}",
                semantics=None if labels[0] is None else _label(layout, options, labels[0], path, (width, height)),
                motion=None if labels[1] is None else _motion_mask(labels[1], (width, height)),
            )  # fmt: skip
            extra: dict = {**flows[i], **files}
            time = i / (len(paths) - 1)
            frames.append(
                FrameRecord(image=path, camera_to_world=poses[i], time=time, intrinsics=intrinsics[i], **extra)
            )
            bar.advance(task)
    meta = {"source": str(layout.root), "source_format": "dynnerf", "converter_version": CONVERTER_VERSION}
    meta["llff_scale"] = norm.scale
    scene = SceneDescription(
        out, layout.classes, frames, scene_box=box, near=near, far=far, extra=meta, unbounded=True,
        applied_transform=norm.transform,
    )  # fmt: skip
    save_scene(scene)
    return scene


def _settings(options: DynNeRFOptions) -> str:
    values = {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(options).items()}
    return json.dumps({"converter_version": CONVERTER_VERSION, **values}, sort_keys=True)


def cached_dynnerf_scene(
    source: Path, options: DynNeRFOptions, cache_dir: Optional[Path] = None, console: Optional[Console] = None
) -> Path:
    """The semflow scene folder converted from the DynNeRF folder ``source``, converting it when needed.

    Args:
        source: the DynNeRF scene folder (never modified).
        options: how to read it; part of the cache key.
        cache_dir: where converted scenes are kept (default :func:`default_cache_dir`).
        console: where to report progress (default: a new console).

    Raises:
        SceneFormatError: naming the input file (and line, row or field) at fault.
    """
    console = console if console is not None else Console()
    layout = read_layout(source, options)
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    target = cache.resolve() / f"{layout.root.name}-{fingerprint(layout.input_files(), _settings(options))}"
    if (target / SCENE_FILE).is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    console.print(f"Converting the DynNeRF scene {layout.root} into {target}")
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=cache))
    try:
        convert_layout(layout, options, staging, console)
        staging.chmod(0o755)
        staging.rename(target)
    except OSError:
        if not (target / SCENE_FILE).is_file():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
