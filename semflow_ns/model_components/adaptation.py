"""Scene adaptation: start a run from the scene-independent parts of another run (the paper's Sec. 4.4 task).

The parts of the model that do not describe one scene can be carried over from a trained run:

- ``frame-encoder``: the CNN that turns video frames into per-pixel features;
- ``attention``: flow attention over the trajectory tokens;
- ``semantic-heads``: the dynamic and static semantic heads. Their output rows are class logits, so they are
  matched to the new scene's classes by name (``class_map`` renames); the instance logits belong to one scene
  and start fresh.

Everything else (the radiance, proposal and scene-flow fields, camera corrections) is scene-specific and starts
from scratch. Loading happens at the run's first training step (``step 0``), so the weights are not loaded again
when the adapted run is resumed, viewed or evaluated later; a class list that cannot be matched stops the run
there, before any optimisation step. Frozen parts have ``requires_grad`` switched off when the model is built,
so that distributed training sees them as constants from the start.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from nerfstudio.configs.base_config import PrintableConfig
from torch import Tensor, nn

from semflow_ns.fields.dynamic_branch import upgrade_state_keys

PARTS: dict[str, tuple[str, ...]] = {
    "frame-encoder": ("dynamic.aggregator.bank.encoder",),
    "attention": ("dynamic.attention",),
    "semantic-heads": ("dynamic.semantic_head", "static_semantic_head"),
}
"""Transferable parts and the model attributes (dotted paths) that hold them."""
HEADS = PARTS["semantic-heads"]
MULTI_SCENE_PREFIX = "scenes.0."
"""Where a multi-scene run's checkpoint keeps its first scene model (whose semantic parts all scenes share)."""


class AdaptationError(ValueError):
    """The source run cannot be used: missing files, parts that do not exist or do not fit, unmatched classes."""


@dataclass
class AdaptationConfig(PrintableConfig):
    """Start from another semantic-flow run's scene-independent parts (``--pipeline.model.adaptation.*``)."""

    load_config: Optional[Path] = None
    """config.yml of the trained semantic-flow run to start from; its latest checkpoint is used. None: train
    from scratch."""
    parts: tuple[str, ...] = ("frame-encoder", "attention", "semantic-heads")
    """Parts to load: frame-encoder, attention, semantic-heads."""
    freeze: tuple[str, ...] = ()
    """Parts that keep the loaded weights (not trained), among those loaded."""
    class_map: str = ""
    """Class renames, "new=old,new2=old2": the new scene's class `new` takes the source's class `old`. Other
    classes are matched by their names."""

    def check(self) -> None:
        """Raises AdaptationError for unknown part names or frozen parts that are not loaded."""
        for option, names in (("parts", self.parts), ("freeze", self.freeze)):
            unknown = [n for n in names if n not in PARTS]
            if unknown:
                raise AdaptationError(f"adaptation.{option}: unknown part(s) {unknown}; choose from {sorted(PARTS)}")
        not_loaded = [n for n in self.freeze if n not in self.parts]
        if not_loaded:
            raise AdaptationError(f"adaptation.freeze: {not_loaded} must also be in adaptation.parts to be frozen")
        class_renames(self.class_map)


def class_renames(spec: str) -> dict[str, str]:
    """``"new=old,..."`` as a dict new -> old."""
    renames: dict[str, str] = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        new, sep, old = (s.strip() for s in item.partition("="))
        if not sep or not new or not old:
            raise AdaptationError(f"adaptation.class-map: {item!r} is not of the form new=old")
        renames[new] = old
    return renames


def class_rows(target: list[str], source: list[str], class_map: str) -> list[int]:
    """For each class of the new scene, the index of the source class it takes its logits from.

    Raises:
        AdaptationError: a class without a counterpart; the message lists both class lists.
    """
    renames = class_renames(class_map)
    wanted = [renames.get(name, name) for name in target]
    missing = [
        f"{t!r}" + (f" (as {w!r})" if w != t else "") for t, w in zip(target, wanted, strict=True) if w not in source
    ]
    if missing:
        raise AdaptationError(
            f"adaptation: the source run has no class for {', '.join(missing)}. Source classes: {source}; this "
            f"scene's classes: {target}. Map names with --pipeline.model.adaptation.class-map new=old, or leave "
            "semantic-heads out of --pipeline.model.adaptation.parts."
        )
    return [source.index(w) for w in wanted]


@dataclass
class SourceRun:
    """What adaptation reads from the source run."""

    state: dict[str, Tensor]
    """The model's weights (pipeline state without the ``_model.`` prefix)."""
    class_names: list[str]
    checkpoint: Path


def read_source(config_path: Path) -> SourceRun:
    """The latest checkpoint and the class list of the run saved at ``config_path``."""
    from semflow_ns.scripts.runs import RunError, load_run_config, load_run_scene

    if not Path(config_path).is_file():
        raise AdaptationError(
            f"adaptation.load-config {config_path}: no such file (give the config.yml of a trained semantic-flow run)"
        )
    try:
        config = load_run_config(Path(config_path))
    except RunError as err:
        raise AdaptationError(f"adaptation.load-config: {err}") from err
    checkpoints = sorted(config.get_checkpoint_dir().glob("step-*.ckpt"))
    if not checkpoints:
        raise AdaptationError(f"adaptation.load-config {config_path}: no checkpoint in {config.get_checkpoint_dir()}")
    try:
        class_names = load_run_scene(config).class_names
    except Exception as err:  # the source scene folder moved or changed: say which one
        raise AdaptationError(
            f"adaptation.load-config {config_path}: cannot read the class list of its scene "
            f"({config.pipeline.datamanager.dataparser.data}): {err}"  # type: ignore[attr-defined]
        ) from err
    pipeline = torch.load(checkpoints[-1], map_location="cpu", weights_only=False)["pipeline"]
    state = {k.removeprefix("module.").removeprefix("_model."): v for k, v in pipeline.items()}
    if any(k.startswith(MULTI_SCENE_PREFIX) for k in state):  # a multi-scene run: its shared parts, from scene 0
        state = {k.removeprefix(MULTI_SCENE_PREFIX): v for k, v in state.items() if k.startswith(MULTI_SCENE_PREFIX)}
    return SourceRun(upgrade_state_keys(state), class_names, checkpoints[-1])


def source_uses_field_features(config: AdaptationConfig, feature_dim: int, flow_dim: int) -> Optional[bool]:
    """Whether the source run's dynamic semantic head also sees the field features (its first layer is
    ``flow_dim + feature_dim`` wide rather than ``flow_dim``); None when that cannot be told (no source, or a
    head of neither width), so the new run keeps its own choice and a real mismatch is reported when loading."""
    if config.load_config is None or "semantic-heads" not in config.parts:
        return None
    widths = {flow_dim + feature_dim: True, flow_dim: False}
    weight = read_source(config.load_config).state.get("dynamic.semantic_head.mlp.layers.0.weight")
    return None if weight is None else widths.get(int(weight.shape[1]))


def module_at(model: nn.Module, path: str) -> Optional[nn.Module]:
    """The submodule at the dotted attribute ``path`` of ``model``, or None where the path breaks off."""
    module: Optional[nn.Module] = model
    for name in path.split("."):
        module = getattr(module, name, None) if module is not None else None
    return module


def part_modules(model: nn.Module, part: str) -> dict[str, nn.Module]:
    """The modules of ``part`` in ``model`` by dotted path.

    Raises:
        AdaptationError: the model has no such part (e.g. flow features with ``semantic-source point``).
    """
    modules = {path: module_at(model, path) for path in PARTS[part]}
    absent = [path for path, module in modules.items() if module is None]
    if absent:
        raise AdaptationError(
            f"adaptation.parts: this model has no {part} ({', '.join(absent)}); the frame encoder and attention "
            "exist only with --pipeline.model.semantic-source flow"
        )
    return {path: module for path, module in modules.items() if module is not None}


def freeze_parts(model: nn.Module, config: AdaptationConfig) -> int:
    """Switches off the gradients of the frozen parts; returns how many parameters were frozen."""
    count = 0
    for part in config.freeze:
        for module in part_modules(model, part).values():
            for parameter in module.parameters():
                parameter.requires_grad_(False)
                count += parameter.numel()
    return count


def _head_state(
    own: dict[str, Tensor], source: dict[str, Tensor], rows: list[int], num_source_classes: int
) -> dict[str, Tensor]:
    """A semantic head's weights from the source: hidden layers as they are, output rows picked by class (the
    rows after the classes, instance logits, keep their own initialisation)."""
    out_key = max((k for k in own if k.endswith("weight")), key=lambda k: int(k.split(".")[-2]))
    out_bias = out_key.removesuffix("weight") + "bias"
    state = {}
    for key, value in own.items():
        if key not in (out_key, out_bias):
            state[key] = source[key]
            continue
        merged = value.clone()
        index = torch.as_tensor(rows, dtype=torch.long)
        merged[: len(rows)] = source[key][:num_source_classes][index]
        state[key] = merged
    return state


def load_parts(model: nn.Module, config: AdaptationConfig, target_classes: list[str]) -> list[str]:
    """Loads ``config.parts`` of the source run into ``model``; returns one line per loaded module.

    Raises:
        AdaptationError: unreadable source, unmatched classes, or a part whose shapes differ from the source's.
    """
    source = read_source(config.load_config)  # type: ignore[arg-type]
    rows = class_rows(target_classes, source.class_names, config.class_map) if "semantic-heads" in config.parts else []
    report = []
    for part in config.parts:
        for path, module in part_modules(model, part).items():
            own = module.state_dict()
            theirs = {k: source.state.get(f"{path}.{k}") for k in own}
            absent = [k for k, v in theirs.items() if v is None]
            if absent:
                raise AdaptationError(f"adaptation: {source.checkpoint} has no {path} weights ({absent[0]}, ...)")
            if path in HEADS:
                state = _head_state(own, theirs, rows, len(source.class_names))  # type: ignore[arg-type]
            else:
                state = theirs  # type: ignore[assignment]
            for key, value in state.items():
                if value.shape != own[key].shape:
                    raise AdaptationError(
                        f"adaptation: {path}.{key} has shape {tuple(value.shape)} in {source.checkpoint} and "
                        f"{tuple(own[key].shape)} here; give this run the source run's {part} options"
                    )
            module.load_state_dict(state)
            report.append(f"{path} ({sum(v.numel() for v in state.values())} values)")
    return report
