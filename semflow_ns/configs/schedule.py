"""A training schedule sized to the video: `ns-train semantic-flow` trains as long as its scene needs.

Every step draws its rays from a few frames (``num-frames-per-batch``, 4), so a video of N frames needs about N /
4 times as many steps for each frame to be seen equally often. With ``--max-num-iterations 0`` (the method's
default) the trainer sets, once the data is loaded,

    steps = clip(round(visits_per_frame * N / frames_per_batch / 100) * 100, min_steps, max_steps)

and the checkpoint interval. ``visits_per_frame`` was chosen from time-to-quality curves (README, "Training
length sized to the video"). A given ``--max-num-iterations`` is kept as it is. Either way, learning-rate decays
whose ``max_steps`` is 0 (the method's default) and a final evaluation of all images at 0 follow the run's
length; values given for them are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nerfstudio.engine.trainer import Trainer, TrainerConfig
from nerfstudio.utils.rich_utils import CONSOLE


@dataclass
class SemanticFlowTrainerConfig(TrainerConfig):
    """nerfstudio's trainer with a schedule sized to the video (``--max-num-iterations 0``, the default)."""

    _target: type = field(default_factory=lambda: SemanticFlowTrainer)
    visits_per_frame: float = 175.0
    """Automatic schedule: times each video frame is among a batch's frames over the run."""
    min_steps: int = 800
    """Automatic schedule: fewest steps."""
    max_steps: int = 6000
    """Automatic schedule: most steps."""


def scheduled_steps(num_frames: int, frames_per_batch: int, config: SemanticFlowTrainerConfig) -> int:
    """The automatic length of a run on a video of ``num_frames`` frames (see the module docstring)."""
    per_batch = num_frames if frames_per_batch <= 0 else min(frames_per_batch, num_frames)
    steps = 100 * round(config.visits_per_frame * num_frames / max(per_batch, 1) / 100)
    return int(min(max(steps, config.min_steps), config.max_steps))


class SemanticFlowTrainer(Trainer):
    """Resolves the automatic schedule when the data is loaded, before the optimizers are made."""

    config: SemanticFlowTrainerConfig

    def setup_optimizers(self):  # noqa: ANN201 (nerfstudio's Optimizers)
        if self.config.max_num_iterations <= 0:
            apply_schedule(self.config, self._num_video_frames())
        follow_length(self.config)
        return super().setup_optimizers()

    def _num_video_frames(self) -> int:
        datamanager = self.pipeline.datamanager
        return len(datamanager.train_dataparser_outputs.image_filenames)  # type: ignore[attr-defined]


def follow_length(config: TrainerConfig) -> None:
    """Learning-rate decays and the final evaluation left at 0 follow the run's length."""
    steps = config.max_num_iterations
    if config.steps_per_eval_all_images <= 0:
        config.steps_per_eval_all_images = steps
    for group in config.optimizers.values():
        scheduler = group.get("scheduler")
        if scheduler is not None and getattr(scheduler, "max_steps", 1) <= 0:
            scheduler.max_steps = steps


def apply_schedule(config: SemanticFlowTrainerConfig, num_frames: int) -> int:
    """Sets ``config``'s length and checkpoint interval for ``num_frames`` (and, where left at 0, the learning-rate
    decays and the final evaluation)."""
    sampler = getattr(config.pipeline.datamanager, "pixel_sampler", None)
    per_batch = getattr(sampler, "num_frames_per_batch", 4)
    steps = scheduled_steps(num_frames, per_batch, config)
    config.max_num_iterations = steps
    config.steps_per_save = min(config.steps_per_save, steps)
    follow_length(config)
    CONSOLE.print(
        f"[bold]Semantic Flow:[/bold] {steps} steps for {num_frames} frames "
        f"({config.visits_per_frame:g} visits per frame, {per_batch} frames per batch; "
        "--max-num-iterations N sets another length)"
    )
    return steps
