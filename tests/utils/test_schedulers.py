"""The float learning-rate schedule: warm-up, exponential decay, and checkpoint-safe values."""

import io
import math

import pytest
import torch

from semflow_ns.utils.schedulers import FloatExponentialDecaySchedulerConfig

LR = 1e-2


def rates(config: FloatExponentialDecaySchedulerConfig, steps: int) -> list[float]:
    """The learning rate at steps 0 .. steps-1."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=LR)
    scheduler = config.setup().get_scheduler(optimizer, LR)
    out = []
    for _ in range(steps):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return out


def test_warm_up_then_exponential_decay_to_the_final_rate():
    config = FloatExponentialDecaySchedulerConfig(lr_final=1e-4, warmup_steps=10, max_steps=110)
    lr = rates(config, 130)
    assert lr[0] == pytest.approx(LR / 10)
    assert lr[4] == pytest.approx(LR * 5 / 10)
    assert lr[9] == pytest.approx(LR)
    assert lr[10] == pytest.approx(LR)  # decay starts after the warm-up
    assert lr[60] == pytest.approx(math.sqrt(LR * 1e-4))  # halfway: the geometric mean
    assert lr[110] == pytest.approx(1e-4)
    assert lr[129] == pytest.approx(1e-4)  # kept after max_steps
    assert all(a >= b for a, b in zip(lr[9:], lr[10:], strict=False))


def test_no_warm_up_starts_at_the_optimizer_rate():
    lr = rates(FloatExponentialDecaySchedulerConfig(lr_final=1e-3, warmup_steps=0, max_steps=100), 101)
    assert lr[0] == pytest.approx(LR)
    assert lr[50] == pytest.approx(math.sqrt(LR * 1e-3))
    assert lr[100] == pytest.approx(1e-3)


def test_rates_are_python_floats_and_the_state_loads_weights_only():
    """nerfstudio's schedulers leave numpy floats in the optimizer state, which ``torch.load`` refuses."""
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=LR)
    config = FloatExponentialDecaySchedulerConfig(lr_final=1e-4, warmup_steps=3, max_steps=20)
    scheduler = config.setup().get_scheduler(optimizer, LR)
    for _ in range(5):
        optimizer.step()
        scheduler.step()
    assert type(optimizer.param_groups[0]["lr"]) is float
    buffer = io.BytesIO()
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    assert loaded["optimizer"]["param_groups"][0]["lr"] == pytest.approx(optimizer.param_groups[0]["lr"])
