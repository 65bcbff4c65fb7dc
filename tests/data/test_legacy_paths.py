"""Runs saved before the data package was split by role still load: their config.yml names the old module paths."""

import importlib

import pytest
import yaml

from semflow_ns.configs.method_configs import semantic_flow_config
from semflow_ns.data.dataparsers.dynnerf_dataparser import DynNeRFDataParser, DynNeRFDataParserConfig
from semflow_ns.data.dataparsers.semflow_dataparser import SemanticFlowDataParser, SemanticFlowDataParserConfig
from semflow_ns.data.datasets.pixel_sampler import SemanticFlowPixelSampler, SemanticFlowPixelSamplerConfig
from semflow_ns.data.datasets.semflow_dataset import SemanticFlowDataset
from semflow_ns.utils.legacy_paths import LEGACY_MODULES

OLD_CONFIG = """\
!!python/object:nerfstudio.data.datamanagers.base_datamanager.VanillaDataManagerConfig
_target: !!python/object/apply:_operator.getitem
- !!python/name:nerfstudio.data.datamanagers.base_datamanager.VanillaDataManager ''
- !!python/name:semflow_ns.data.semflow_dataset.SemanticFlowDataset ''
dataparser: !!python/object:semflow_ns.data.semflow_dataparser.SemanticFlowDataParserConfig
  _target: !!python/name:semflow_ns.data.semflow_dataparser.SemanticFlowDataParser ''
  data: !!python/object/apply:pathlib.PosixPath
  - scenes
  - demo
  label_frames: every:4
pixel_sampler: !!python/object:semflow_ns.data.pixel_sampler.SemanticFlowPixelSamplerConfig
  _target: !!python/name:semflow_ns.data.pixel_sampler.SemanticFlowPixelSampler ''
  num_frames_per_batch: 3
"""
"""A datamanager section of a config.yml written before the split (trimmed to the plugin's classes)."""

OLD_DYNNERF = """\
!!python/object:semflow_ns.data.dynnerf_dataparser.DynNeRFDataParserConfig
_target: !!python/name:semflow_ns.data.dynnerf_dataparser.DynNeRFDataParser ''
downscale_factor: 4
"""


def test_old_tags_load_the_new_classes() -> None:
    config = yaml.load(OLD_CONFIG, Loader=yaml.Loader)
    assert config._target.__args__ == (SemanticFlowDataset,)
    assert type(config.dataparser) is SemanticFlowDataParserConfig
    assert config.dataparser._target is SemanticFlowDataParser
    assert config.dataparser.label_frames == "every:4"
    assert type(config.pixel_sampler) is SemanticFlowPixelSamplerConfig
    assert config.pixel_sampler._target is SemanticFlowPixelSampler
    assert config.pixel_sampler.num_frames_per_batch == 3
    dynnerf = yaml.load(OLD_DYNNERF, Loader=yaml.Loader)
    assert type(dynnerf) is DynNeRFDataParserConfig and dynnerf._target is DynNeRFDataParser
    assert dynnerf.downscale_factor == 4


def test_a_whole_config_with_old_data_paths_loads_as_the_current_one() -> None:
    text = yaml.dump(semantic_flow_config())
    old_text = text
    for old, new in sorted(LEGACY_MODULES.items(), key=lambda item: -len(item[1])):
        old_text = old_text.replace(f"{new}.", f"{old}.")
    assert "semflow_ns.data.semflow_dataparser.SemanticFlowDataParserConfig" in old_text
    assert "semflow_ns.data.pixel_sampler.SemanticFlowPixelSamplerConfig" in old_text
    assert "semflow_ns.data.semflow_dataset.SemanticFlowDataset" in old_text
    assert yaml.dump(yaml.load(old_text, Loader=yaml.Loader)) == text


@pytest.mark.parametrize("old", sorted(LEGACY_MODULES))
def test_every_old_module_path_is_the_new_module(old: str) -> None:
    module = importlib.import_module(old)
    assert module is importlib.import_module(LEGACY_MODULES[old])
    assert module.__name__ == LEGACY_MODULES[old] and module.__spec__.name == LEGACY_MODULES[old]


def test_model_configs_saved_before_the_options_moved_out_load() -> None:
    """``config.yml`` files written while the model's options lived in ``semflow_model`` name that module."""
    from semflow_ns.models.model_config import SemanticFlowModelConfig
    from semflow_ns.models.semflow_model import SemanticFlowModel

    text = (
        "!!python/object:semflow_ns.semflow_model.SemanticFlowModelConfig\n"
        "_target: !!python/name:semflow_ns.semflow_model.SemanticFlowModel ''\n"
        "semantic_propagation_loss_mult: 0.3\n"
    )
    config = yaml.load(text, Loader=yaml.Loader)
    assert isinstance(config, SemanticFlowModelConfig) and config._target is SemanticFlowModel
    assert config.semantic_propagation_loss_mult == 0.3 and SemanticFlowModelConfig()._target is SemanticFlowModel
