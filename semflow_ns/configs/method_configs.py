"""Registration of the `semantic-flow` and `semantic-flow-multi` methods (entry point `nerfstudio.method_configs`).

`ns-train semantic-flow` with no other argument trains on the built-in demo scene, on CUDA when
there is a GPU and on the CPU otherwise, with nerfstudio's viewer and TensorBoard logging.
"""

import torch
from nerfstudio.configs.base_config import MachineConfig, ViewerConfig
from nerfstudio.data.datamanagers.base_datamanager import VanillaDataManager, VanillaDataManagerConfig
from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.pipelines.base_pipeline import VanillaPipelineConfig
from nerfstudio.plugins.types import MethodSpecification

from semflow_ns.configs.schedule import SemanticFlowTrainerConfig
from semflow_ns.data.dataparsers.multi_scene import MultiSceneDataParserConfig
from semflow_ns.data.dataparsers.semflow_dataparser import SemanticFlowDataParserConfig
from semflow_ns.data.datasets.pixel_sampler import SemanticFlowPixelSamplerConfig
from semflow_ns.data.datasets.semflow_dataset import SemanticFlowDataset
from semflow_ns.models.model_config import SemanticFlowModelConfig
from semflow_ns.models.multi_scene_model import MultiSceneModelConfig
from semflow_ns.pipelines.multi_scene_pipeline import MultiScenePipelineConfig
from semflow_ns.utils.optimizers import FusedAdamOptimizerConfig
from semflow_ns.utils.schedulers import FloatExponentialDecaySchedulerConfig

AUTO = 0
"""A length of 0 (the default of `--max-num-iterations`, of the learning-rate decays and of the final
evaluation) is decided when the data is loaded: see :mod:`semflow_ns.configs.schedule`."""

CAMERA_OPT_LR = 1e-3
"""Initial learning rate of the camera pose corrections (radians / world units per Adam step, roughly)."""


def _optimizer(lr: float, max_steps: int = AUTO) -> dict:
    return {
        "optimizer": FusedAdamOptimizerConfig(lr=lr, eps=1e-15),
        "scheduler": FloatExponentialDecaySchedulerConfig(lr_final=lr / 10, warmup_steps=50, max_steps=max_steps),
    }


def semantic_flow_config() -> SemanticFlowTrainerConfig:
    """The default `semantic-flow` trainer configuration (its length sized to the video, see
    :mod:`semflow_ns.configs.schedule`)."""
    return SemanticFlowTrainerConfig(
        method_name="semantic-flow",
        max_num_iterations=AUTO,
        steps_per_eval_batch=500,
        steps_per_eval_image=500,
        steps_per_eval_all_images=AUTO,
        steps_per_save=1000,
        save_only_latest_checkpoint=True,
        mixed_precision=False,
        pipeline=VanillaPipelineConfig(
            datamanager=VanillaDataManagerConfig(
                _target=VanillaDataManager[SemanticFlowDataset],
                dataparser=SemanticFlowDataParserConfig(),
                pixel_sampler=SemanticFlowPixelSamplerConfig(),
                train_num_rays_per_batch=1024,
                eval_num_rays_per_batch=1024,
            ),
            model=SemanticFlowModelConfig(eval_num_rays_per_chunk=4096),
        ),
        optimizers={
            "proposal_networks": _optimizer(3e-2),
            "static_field": _optimizer(3e-2),
            "dynamic_field": _optimizer(3e-2),
            "scene_flow": _optimizer(5e-3),
            "semantics": _optimizer(5e-3),
            # pose corrections (only when the model refines poses, see the model's camera_optimizer): Adam as
            # in nerfacto, decayed tenfold over training after the common 50-step warm-up
            "camera_opt": _optimizer(CAMERA_OPT_LR),
        },
        machine=MachineConfig(device_type="cuda" if torch.cuda.is_available() else "cpu"),
        viewer=ViewerConfig(num_rays_per_chunk=4096),
        vis="viewer+tensorboard",
    )


def semantic_flow_multi_config() -> TrainerConfig:
    """`semantic-flow-multi`: the `semantic-flow` defaults on several scenes (`semflow-multi-data`), one set of
    fields per scene and shared semantic parts; per-scene and overall evaluation metrics."""
    config = semantic_flow_config()
    config.method_name = "semantic-flow-multi"
    single = config.pipeline
    config.pipeline = MultiScenePipelineConfig(
        datamanager=single.datamanager,
        model=MultiSceneModelConfig(eval_num_rays_per_chunk=single.model.eval_num_rays_per_chunk),
    )
    config.pipeline.datamanager.dataparser = MultiSceneDataParserConfig()
    return config


semantic_flow_method = MethodSpecification(
    config=semantic_flow_config(),
    description="Semantic Flow (ICLR 2024): semantics, colour and motion of a dynamic scene from a monocular video",
)

semantic_flow_multi_method = MethodSpecification(
    config=semantic_flow_multi_config(),
    description="Semantic Flow on several scenes in one run: per-scene fields, shared semantic parts",
)
