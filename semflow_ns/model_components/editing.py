"""Scene editing by semantics: remove classes or instances, or highlight classes, at render time.

Removal follows the paper's editing application (Fig. 1; the official code has it commented
out): a sample whose predicted class (or instance) is removed gets zero density, in the
static and in the dynamic field, *before* the weights are computed, so the transmittance changes too
and whatever was behind the removed object shows through.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Optional

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from semflow_ns.fields.radiance_field import RadianceSamples


@dataclass
class SceneEdit:
    """What to change in renders (training is never affected)."""

    removed_classes: set[int] = field(default_factory=set)
    """Class ids whose samples are removed."""
    removed_instances: set[int] = field(default_factory=set)
    """Instance ids whose samples are removed."""
    highlighted_classes: set[int] = field(default_factory=set)
    """If non-empty, everything but these classes is dimmed in `rgb`."""
    dim: float = 0.2
    """Brightness kept by dimmed pixels in highlight mode."""

    @property
    def removes(self) -> bool:
        return bool(self.removed_classes or self.removed_instances)


def _member(ids: Tensor, chosen: set[int]) -> Tensor:
    if not chosen:
        return torch.zeros_like(ids, dtype=torch.bool)
    return torch.isin(ids, torch.tensor(sorted(chosen), device=ids.device))


def removal_keep(
    edit: SceneEdit,
    class_logits: Float[Tensor, "*bs num_classes"],
    instance_logits: Optional[Float[Tensor, "*bs num_instances"]],
    predicted: Optional[Bool[Tensor, "*bs 1"]] = None,
) -> Float[Tensor, "*bs 1"]:
    """1 for samples that stay, 0 for samples whose predicted class or instance is removed.

    Args:
        edit: what is removed.
        class_logits: class logits of every sample.
        instance_logits: instance logits of every sample (None: the scene has no instances).
        predicted: False for samples that have no prediction (their logits are placeholders, e.g. the zeros
            of dynamic samples too transparent to be seen, whose argmax would be class 0): they always stay.
    """
    removed = _member(class_logits.argmax(dim=-1), edit.removed_classes)
    if instance_logits is not None:
        removed = removed | _member(instance_logits.argmax(dim=-1), edit.removed_instances)
    if predicted is not None:
        removed = removed & predicted[..., 0]
    return (~removed)[..., None].to(class_logits.dtype)


def removed_densities(
    edit: SceneEdit,
    split_logits: Callable[[Tensor], tuple[Tensor, Optional[Tensor]]],
    static: RadianceSamples,
    dynamic: RadianceSamples,
    static_logits: Float[Tensor, "*bs num_logits"],
    dynamic_logits: Float[Tensor, "*bs num_logits"],
    predicted: Bool[Tensor, "*bs 1"],
) -> tuple[Float[Tensor, "*bs 1"], Float[Tensor, "*bs 1"], Float[Tensor, "*bs 1"]]:
    """Static density, dynamic density and blending weight with the removed samples zeroed.

    ``predicted`` marks the dynamic samples that have logits (the visible ones): the zeros of the others
    must not count as class 0. A removed dynamic sample also gives up its blending share, or it would
    still hide the static scene.
    """
    assert dynamic.blend is not None
    static_density = static.density * removal_keep(edit, *split_logits(static_logits))
    keep_dynamic = removal_keep(edit, *split_logits(dynamic_logits), predicted=predicted)
    return static_density, dynamic.density * keep_dynamic, dynamic.blend * keep_dynamic


def highlight(
    edit: SceneEdit, rgb: Float[Tensor, "*bs 3"], semantics: Float[Tensor, "*bs num_classes"]
) -> Float[Tensor, "*bs 3"]:
    """Dims pixels by how unlikely they are to show a highlighted class."""
    if not edit.highlighted_classes:
        return rgb
    index = torch.tensor(sorted(edit.highlighted_classes), device=rgb.device)
    chosen = torch.softmax(semantics, dim=-1)[..., index].sum(dim=-1, keepdim=True)
    return rgb * (edit.dim + (1.0 - edit.dim) * chosen)
