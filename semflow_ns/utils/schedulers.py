"""Learning-rate schedule whose values are plain Python floats.

nerfstudio's schedulers compute rates with numpy, so optimizer states hold ``numpy.float64`` and
``torch.load`` (weights-only by default since torch 2.6) refuses the checkpoints in `ns-eval`,
`ns-render` and `ns-viewer`. This schedule is the same exponential decay with warm-up, in floats.
"""

import math
from dataclasses import dataclass, field

from nerfstudio.engine.schedulers import Scheduler, SchedulerConfig
from torch.optim import Optimizer, lr_scheduler


@dataclass
class FloatExponentialDecaySchedulerConfig(SchedulerConfig):
    """Linear warm-up to the optimizer's rate, then exponential decay to `lr_final` at `max_steps`."""

    _target: type = field(default_factory=lambda: FloatExponentialDecayScheduler)
    lr_final: float = 1e-4
    """Learning rate reached at `max_steps` (and kept after)."""
    warmup_steps: int = 0
    """Steps of linear warm-up from 0."""
    max_steps: int = 10000
    """Step at which the decay reaches `lr_final`."""


class FloatExponentialDecayScheduler(Scheduler):
    """See :class:`FloatExponentialDecaySchedulerConfig`."""

    config: FloatExponentialDecaySchedulerConfig

    def get_scheduler(self, optimizer: Optimizer, lr_init: float) -> lr_scheduler.LRScheduler:
        cfg = self.config
        log_ratio = math.log(cfg.lr_final / lr_init)

        def factor(step: int) -> float:
            if step < cfg.warmup_steps:
                return float(step + 1) / cfg.warmup_steps
            progress = min(max((step - cfg.warmup_steps) / max(cfg.max_steps - cfg.warmup_steps, 1), 0.0), 1.0)
            return float(math.exp(log_ratio * progress))

        return lr_scheduler.LambdaLR(optimizer, lr_lambda=factor)
