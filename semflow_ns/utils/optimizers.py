"""Adam with PyTorch's fused implementation, as a nerfstudio optimizer config."""

from dataclasses import dataclass

from nerfstudio.engine.optimizers import AdamOptimizerConfig


@dataclass
class FusedAdamOptimizerConfig(AdamOptimizerConfig):
    """nerfstudio's Adam config with ``fused`` passed on to ``torch.optim.Adam``: one kernel updates every
    parameter of a group. On the CPU it took a third of the time of the default update for this model's grids
    (`benchmarks/benchmark_speed.py`); CUDA supports it too."""

    weight_decay: float = 0.0
    """The weight decay to use (nerfstudio's default, as a float)."""
    fused: bool = True
    """Use the fused Adam implementation (False: PyTorch's default)."""
