"""The training schedule sized to the video: steps, learning-rate decay, final evaluation and checkpoints."""

from model_helpers import shrink_model

from semflow_ns.configs.method_configs import semantic_flow_config
from semflow_ns.configs.schedule import SemanticFlowTrainerConfig, apply_schedule, scheduled_steps


def test_steps_grow_with_the_frames_within_bounds():
    config = SemanticFlowTrainerConfig(visits_per_frame=100.0, min_steps=800, max_steps=6000)
    assert scheduled_steps(40, 4, config) == 1000
    assert scheduled_steps(90, 4, config) == 2200  # rounded to hundreds
    assert scheduled_steps(8, 4, config) == 800  # at least min_steps
    assert scheduled_steps(1000, 4, config) == 6000  # at most max_steps
    assert scheduled_steps(40, 8, config) == 800 and scheduled_steps(3, 4, config) == 800


def test_the_schedule_sets_length_decay_evaluation_and_checkpoints():
    config = semantic_flow_config()
    assert isinstance(config, SemanticFlowTrainerConfig) and config.max_num_iterations == 0  # automatic
    steps = apply_schedule(config, 60)
    assert steps == scheduled_steps(60, 4, config)
    assert config.max_num_iterations == config.steps_per_eval_all_images == steps
    assert config.steps_per_save <= steps
    assert all(group["scheduler"].max_steps == steps for group in config.optimizers.values())


def test_a_run_resolves_the_schedule_when_its_data_is_loaded(tiny_scene, tmp_path):
    config = semantic_flow_config()
    config.pipeline.datamanager.dataparser.data = tiny_scene
    config.output_dir = tmp_path
    config.vis = "tensorboard"
    shrink_model(config.pipeline.model)
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    assert trainer.config.max_num_iterations == scheduled_steps(8, 4, config) > 0
    assert all(
        g["scheduler"].max_steps == trainer.config.max_num_iterations for g in trainer.config.optimizers.values()
    )
    given = semantic_flow_config()
    given.max_num_iterations = 123
    given.pipeline.datamanager.dataparser.data = tiny_scene
    given.output_dir = tmp_path / "given"
    given.vis = "tensorboard"
    shrink_model(given.pipeline.model)
    kept = given.setup(local_rank=0, world_size=1)
    kept.setup()
    assert kept.config.max_num_iterations == 123, "a given length is kept"
    assert kept.config.steps_per_eval_all_images == 123, "the final evaluation follows it"
    assert all(g["scheduler"].max_steps == 123 for g in kept.config.optimizers.values()), "so do the decays"
