"""DataParser for several scenes trained in one run (``semflow-multi-data``; the paper's multi-scene task).

Each folder is read as ``semflow-data`` reads it (a semflow scene with transforms.json) or as
``dynnerf-data`` does (a DynNeRF folder with poses_bounds.npy), with the same split options for all. The
scenes' images are concatenated in folder order; every camera carries the index of its scene in its
metadata (:data:`SCENE_KEY`), and so does every ray generated from it, which is how the multi-scene model
sends a ray to its scene's fields. The scenes must share one class list (names, order and which classes
move): the semantic parts of the model are shared, so a class is one output row for every scene.

Each scene keeps its own world frame, box and time axis; the run's scene box (used by the viewer only)
is their union.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import torch
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.data.dataparsers.base_dataparser import DataParser, DataparserOutputs, Semantics
from nerfstudio.data.scene_box import SceneBox
from nerfstudio.utils.rich_utils import CONSOLE

from semflow_ns.data.dataparsers.dynnerf_dataparser import DynNeRFDataParserConfig
from semflow_ns.data.dataparsers.metadata import VIDEO_FRAME_KEY, SceneInfo, VideoFrames
from semflow_ns.data.dataparsers.semflow_dataparser import SemanticFlowDataParserConfig
from semflow_ns.data.format import SceneFormatError

SCENE_KEY = "scene"
"""Camera (and ray) metadata key: index [num_cameras, 1] of the scene each camera belongs to."""


@dataclass
class SceneData:
    """What the model needs of one scene of a multi-scene run (``metadata["semflow_scenes"]``)."""

    name: str
    """The scene folder's name (made unique with its index when two folders share a name)."""
    root: Path
    video: VideoFrames
    info: SceneInfo
    semantics: Semantics
    scene_box: SceneBox
    num_train_images: int
    """Images of the scene in the training split (its video frames, in order)."""


@dataclass
class MultiSceneDataParserConfig(DynNeRFDataParserConfig):
    """Several dynamic scenes, each a semflow scene folder or a DynNeRF folder, with one shared class list."""

    _target: type = field(default_factory=lambda: MultiSceneDataParser)
    data: tuple[Path, ...] = ()  # type: ignore[assignment]
    """Scene folders (at least two): semflow folders (transforms.json) or DynNeRF folders (poses_bounds.npy).
    The options below apply to every scene; the DynNeRF ones only to DynNeRF folders."""

    def scene_config(self, root: Path) -> SemanticFlowDataParserConfig:
        """The single-scene DataParser config for ``root``, with this config's options."""
        root = Path(root).expanduser()
        target = DynNeRFDataParserConfig if (root / "poses_bounds.npy").is_file() else SemanticFlowDataParserConfig
        names = {f.name for f in dataclasses.fields(target) if f.init and f.name not in ("_target", "data")}
        return target(data=root, **{name: getattr(self, name) for name in names})


def concat_cameras(cameras: list[Cameras]) -> Cameras:
    """One Cameras holding every camera of ``cameras`` (a batch dimension of one each), metadata included."""
    distortions = [c.distortion_params for c in cameras]
    distortion = None
    if any(d is not None for d in distortions):
        distortion = torch.cat(
            [torch.zeros(len(c), 6) if d is None else d for c, d in zip(cameras, distortions, strict=True)]
        )
    keys = set.intersection(*(set(c.metadata or {}) for c in cameras))
    return Cameras(
        camera_to_worlds=torch.cat([c.camera_to_worlds for c in cameras]),
        fx=torch.cat([c.fx for c in cameras]),
        fy=torch.cat([c.fy for c in cameras]),
        cx=torch.cat([c.cx for c in cameras]),
        cy=torch.cat([c.cy for c in cameras]),
        width=torch.cat([c.width for c in cameras]),
        height=torch.cat([c.height for c in cameras]),
        distortion_params=distortion,
        camera_type=torch.cat([c.camera_type for c in cameras]),
        times=torch.cat([c.times for c in cameras]) if all(c.times is not None for c in cameras) else None,
        metadata={key: torch.cat([c.metadata[key] for c in cameras]) for key in keys} or None,  # type: ignore[index]
    )


def check_same_classes(roots: list[Path], infos: list[SceneInfo]) -> None:
    """Raises SceneFormatError (naming the scene and the field) unless all scenes have the first one's classes."""
    first = [(c.name, c.dynamic) for c in infos[0].classes]
    for root, info in zip(roots[1:], infos[1:], strict=True):
        classes = [(c.name, c.dynamic) for c in info.classes]
        if classes != first:
            raise SceneFormatError(
                f"{root}: field 'classes' is {_describe(classes)}, but {roots[0]} has {_describe(first)}; "
                "the scenes of a multi-scene run share the semantic heads and need the same class list "
                "(same names, order and moving classes)"
            )


def _describe(classes: list[tuple[str, bool]]) -> str:
    return "[" + ", ".join(name + (" (moving)" if dynamic else "") for name, dynamic in classes) + "]"


def _unique_names(roots: list[Path]) -> list[str]:
    names = [root.name or str(root) for root in roots]
    return [f"{name}-{i}" if names.count(name) > 1 else name for i, name in enumerate(names)]


class MultiSceneDataParser(DataParser):
    """Concatenates the outputs of one single-scene DataParser per folder (see the module docstring)."""

    config: MultiSceneDataParserConfig
    includes_time: bool = True

    def _generate_dataparser_outputs(self, split: str = "train", **kwargs) -> DataparserOutputs:
        roots = [Path(root).expanduser() for root in self.config.data]
        if len(roots) < 2:
            raise SceneFormatError(
                f"semflow-multi-data --data: {len(roots)} scene folder(s) given; a multi-scene run needs at least "
                "two (train one scene with semflow-data or dynnerf-data)"
            )
        for root in roots:
            if not root.is_dir():
                raise SceneFormatError(f"{root}: scene folder not found (semflow-multi-data --data)")
        parts = [self.config.scene_config(root).setup().get_dataparser_outputs(split) for root in roots]
        infos: list[SceneInfo] = [p.metadata["semflow_scene"] for p in parts]
        check_same_classes(roots, infos)
        names = _unique_names(roots)
        scenes = [
            SceneData(
                name=name,
                root=root,
                video=part.metadata["semflow_video"],
                info=info,
                semantics=part.metadata["semantics"],
                scene_box=part.scene_box,
                num_train_images=len(part.metadata["semflow_video"]),  # the training split is the whole video
            )
            for name, root, part, info in zip(names, roots, parts, infos, strict=True)
        ]
        cameras = []
        for index, part in enumerate(parts):
            camera = dataclasses.replace(part.cameras, metadata=dict(part.cameras.metadata or {}))
            assert camera.metadata is not None and VIDEO_FRAME_KEY in camera.metadata
            camera.metadata[SCENE_KEY] = torch.full((len(camera), 1), index, dtype=torch.long)
            cameras.append(camera)
        semantics = Semantics(
            filenames=[name for p in parts for name in p.metadata["semantics"].filenames],
            classes=list(parts[0].metadata["semantics"].classes),
            colors=parts[0].metadata["semantics"].colors,
        )
        instances = {(i.id, i.name): i for info in infos for i in info.instances}
        merged = dataclasses.replace(
            infos[0], instances=list(instances.values()), has_labels=any(i.has_labels for i in infos)
        )
        boxes = torch.stack([p.scene_box.aabb for p in parts])
        if split == "train":
            CONSOLE.print(f"[bold]semflow-multi-data[/bold]: {len(roots)} scenes ({', '.join(names)})")
        return DataparserOutputs(
            image_filenames=[name for p in parts for name in p.image_filenames],
            cameras=concat_cameras(cameras),
            scene_box=SceneBox(aabb=torch.stack([boxes[:, 0].min(0).values, boxes[:, 1].max(0).values])),
            metadata={
                "semantics": semantics,
                "semflow_frames": [frame for p in parts for frame in p.metadata["semflow_frames"]],
                "semflow_video": scenes[0].video,
                "semflow_scene": merged,
                "semflow_scenes": scenes,
            },
        )
