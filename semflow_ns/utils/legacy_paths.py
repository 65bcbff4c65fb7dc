"""Module paths of earlier versions, kept importable.

The data package was split by role, and the model, its options, the multi-scene model and pipeline and the
nerfstudio registrations moved from the package root into ``models/``, ``pipelines/`` and ``configs/``. Runs
saved before have ``config.yml`` files whose YAML tags name classes by module path, e.g.
``!!python/object:semflow_ns.data.semflow_dataparser.SemanticFlowDataParserConfig``; nerfstudio reads them with
``yaml.load(text, Loader=yaml.Loader)``, which imports the module named in each tag. :func:`install` puts a
finder on ``sys.meta_path`` that resolves each old path of :data:`LEGACY_MODULES` to its new module, so those
runs still load and old imports keep working. Nothing is imported until an old name is.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from types import ModuleType
from typing import Optional

LEGACY_MODULES: dict[str, str] = {
    "semflow_ns.data.scene_format": "semflow_ns.data.format",
    "semflow_ns.data.semflow_dataparser": "semflow_ns.data.dataparsers.semflow_dataparser",
    "semflow_ns.data.dynnerf_dataparser": "semflow_ns.data.dataparsers.dynnerf_dataparser",
    "semflow_ns.data.splits": "semflow_ns.data.dataparsers.splits",
    "semflow_ns.data.frame_selection": "semflow_ns.data.dataparsers.frame_selection",
    "semflow_ns.data.video": "semflow_ns.data.dataparsers.metadata",
    "semflow_ns.data.semflow_dataset": "semflow_ns.data.datasets.semflow_dataset",
    "semflow_ns.data.pixel_sampler": "semflow_ns.data.datasets.pixel_sampler",
    "semflow_ns.data.dynnerf_layout": "semflow_ns.data.dynnerf.layout",
    "semflow_ns.data.dynnerf_convert": "semflow_ns.data.dynnerf.convert",
    "semflow_ns.data.llff": "semflow_ns.data.dynnerf.llff",
    "semflow_ns.data.optical_flow": "semflow_ns.data.producers.optical_flow",
    "semflow_ns.data.labels": "semflow_ns.data.producers.labels",
    "semflow_ns.data.files": "semflow_ns.data.producers.files",
    "semflow_ns.data.scene_geometry": "semflow_ns.data.producers.scene_geometry",
    "semflow_ns.data.legacy_paths": "semflow_ns.utils.legacy_paths",
    "semflow_ns.semflow_model": "semflow_ns.models.semflow_model",
    "semflow_ns.model_config": "semflow_ns.models.model_config",
    "semflow_ns.multi_scene_model": "semflow_ns.models.multi_scene_model",
    "semflow_ns.multi_scene_pipeline": "semflow_ns.pipelines.multi_scene_pipeline",
    "semflow_ns.method_config": "semflow_ns.configs.method_configs",
    "semflow_ns.dataparser_config": "semflow_ns.configs.dataparser_configs",
}
"""Old module path -> the module that now holds its contents."""


class _AliasLoader(importlib.abc.Loader):
    """Loads an old module path as the (imported) new module."""

    def __init__(self, target: str):
        self.target = target
        self.target_spec: Optional[importlib.machinery.ModuleSpec] = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(self.target)
        self.target_spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # the import system has just set the alias' spec on the module; it keeps its own
        module.__spec__ = self.target_spec


class LegacyPathFinder(importlib.abc.MetaPathFinder):
    """Finds the old module paths of :data:`LEGACY_MODULES`."""

    semflow_legacy_paths = True

    def find_spec(self, fullname: str, path=None, target=None) -> Optional[importlib.machinery.ModuleSpec]:
        if fullname not in LEGACY_MODULES:
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(LEGACY_MODULES[fullname]))


def install() -> None:
    """Puts one :class:`LegacyPathFinder` at the end of ``sys.meta_path`` (replacing an earlier one)."""
    sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "semflow_legacy_paths", False)]
    sys.meta_path.append(LegacyPathFinder())


install()
