"""The plugin registers with nerfstudio and imports cleanly."""

import subprocess
import sys

from nerfstudio.plugins.registry import discover_methods
from nerfstudio.plugins.registry_dataparser import discover_dataparsers


def test_method_is_discovered():
    methods, descriptions = discover_methods()
    assert "semantic-flow" in methods
    config = methods["semantic-flow"]
    assert config.method_name == "semantic-flow"
    assert "Semantic Flow" in descriptions["semantic-flow"]


def test_dataparser_is_discovered():
    dataparsers, _ = discover_dataparsers()
    assert {"semflow-data", "dynnerf-data", "semflow-multi-data"} <= set(dataparsers)


def test_multi_scene_method_is_discovered():
    methods, descriptions = discover_methods()
    config = methods["semantic-flow-multi"]
    assert config.method_name == "semantic-flow-multi" and "several scenes" in descriptions["semantic-flow-multi"]
    assert type(config.pipeline.model).__name__ == "MultiSceneModelConfig"
    assert type(config.pipeline.datamanager.dataparser).__name__ == "MultiSceneDataParserConfig"


def test_method_defaults_run_anywhere():
    """No flags needed: CPU without CUDA, no wandb, the demo scene as data."""
    import torch

    from semflow_ns.configs.method_configs import semantic_flow_method
    from semflow_ns.data.demo import default_demo_dir

    config = semantic_flow_method.config
    assert config.machine.device_type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert "wandb" not in config.vis
    assert config.pipeline.datamanager.dataparser.data == default_demo_dir()


def test_entry_point_modules_import_in_a_fresh_interpreter():
    code = "import semflow_ns.configs.method_configs, semflow_ns.configs.dataparser_configs"
    subprocess.run([sys.executable, "-c", code], check=True)
