"""DataParser for DynNeRF/NSFF scene folders (``dynnerf-data``), the layout used by the Semantic Flow paper.

The folder is converted once into a semflow scene in a cache folder (see
:mod:`semflow_ns.data.dynnerf.convert`); the outputs are then built exactly as for ``semflow-data``, with the
same label-subset and evaluation options.

Ray parametrisation: the converted scene is marked ``unbounded``: its scene box bounds the well-observed
content (camera frustums between the near bounds and the median far bound, in DynNeRF's normalised world),
and the model contracts space outside it (nerfstudio's SceneContraction) instead of warping rays to NDC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from nerfstudio.data.dataparsers.base_dataparser import DataparserOutputs
from nerfstudio.utils.rich_utils import CONSOLE

from semflow_ns.data.dataparsers.semflow_dataparser import (
    SemanticFlowDataParser,
    SemanticFlowDataParserConfig,
    scene_outputs,
)
from semflow_ns.data.dynnerf.convert import cached_dynnerf_scene
from semflow_ns.data.dynnerf.layout import DynNeRFOptions
from semflow_ns.data.format import SceneDescription, load_scene


@dataclass
class DynNeRFDataParserConfig(SemanticFlowDataParserConfig):
    """A DynNeRF/NSFF scene folder: poses_bounds.npy, images*/, SegmentationClass*/, labelmap.txt,
    foreground_object.txt, optional motion_masks/ and flow/ (see the README, "DynNeRF layout")."""

    _target: type = field(default_factory=lambda: DynNeRFDataParser)
    data: Path = Path("data/dynnerf/scene")
    """The scene folder (the one holding poses_bounds.npy). It is only read, never modified."""
    downscale_factor: int = 2
    """Train on images_<factor>/ (DynNeRF: 2); created in the cache from images/ when missing. 1 = images/."""
    labels_dir: str = "auto"
    """Label folder inside the scene: auto (SegmentationClass_train, SegmentationClass, other
    SegmentationClass*), a folder name, or none to ignore labels."""
    labelmap: Optional[Path] = None
    """Label map (default: labelmap.txt in the scene folder, else in its parent)."""
    foreground: Optional[Path] = None
    """Moving classes, one name per line (default: foreground_object.txt in the scene folder or its parent)."""
    resize_labels: bool = False
    """Resize labels whose size matches neither the frames nor images/ (nearest neighbour) instead of failing."""
    allow_missing_labels: bool = False
    """Frames without a label file are unlabelled instead of an error."""
    flow_preset: str = "medium"
    """OpenCV DIS preset used when flow/ is missing or incomplete: ultrafast, fast or medium."""
    cache_dir: Optional[Path] = None
    """Where converted scenes are kept (default: $SEMFLOW_CACHE_DIR/dynnerf or ~/.cache/semflow_ns/dynnerf)."""

    def options(self) -> DynNeRFOptions:
        """The options that change the converted scene (and hence its cache key)."""
        return DynNeRFOptions(
            downscale_factor=self.downscale_factor,
            labels_dir=self.labels_dir,
            labelmap=None if self.labelmap is None else Path(self.labelmap).expanduser().resolve(),
            foreground=None if self.foreground is None else Path(self.foreground).expanduser().resolve(),
            resize_labels=self.resize_labels,
            allow_missing_labels=self.allow_missing_labels,
            flow_preset=self.flow_preset,
        )


class DynNeRFDataParser(SemanticFlowDataParser):
    """Converts (or reuses) the cached semflow scene of a DynNeRF folder and parses it like ``semflow-data``."""

    config: DynNeRFDataParserConfig

    def __init__(self, config: DynNeRFDataParserConfig):
        super().__init__(config=config)
        self._scene: Optional[SceneDescription] = None

    def _load(self) -> SceneDescription:
        if self._scene is None:
            folder = cached_dynnerf_scene(Path(self.config.data), self.config.options(), self.config.cache_dir, CONSOLE)
            self._scene = load_scene(folder)
            if self._scene.has_labels and not self._scene.dynamic_class_ids:
                CONSOLE.print(
                    f"[yellow]{self.config.data}: no foreground_object.txt: every class is treated as static[/yellow]"
                )
        return self._scene

    def _generate_dataparser_outputs(self, split: str = "train", **kwargs) -> DataparserOutputs:
        return scene_outputs(self._load(), split, self.config, "dynnerf-data")
