"""Training recipes: the paper's (Sec. 3.3) and a strong re-id baseline, as plain options.

Paper recipe (``TrainConfig.recipe == "paper"``): SGD with momentum
``cfg.momentum`` (0.9), weight decay ``cfg.weight_decay``, initial learning
rate ``cfg.lr`` (0.01, paper Sec. 3.3) with exponential decay: during epoch e
(0-based) the rate is ``cfg.lr * cfg.lr_gamma ** e`` (the paper names an
"exponential learning rate schedule" without its factor; we use 0.9 per
epoch). Batches of ``cfg.batch_size`` images drawn at random without
replacement; loss Eq. 3. The paper states no augmentation; we use the re-id
baseline's horizontal flip and 4-pixel pad-and-crop, boxes moved along.

Strong recipe (``"strong"``, after Luo et al.'s Bag of Tricks, 2019): PK
batches (``cfg.batch_size // cfg.num_instances`` identities x
``cfg.num_instances``), one epoch of linear warm-up from 0.1 x ``cfg.lr``,
then a per-step cosine decay to zero; BNNeck, label smoothing 0.1 and a
batch-hard triplet loss (margin 0.3) on the global feature, with Eq. 3's part
terms on top. Every switch is a field of :class:`RecipeOptions`, so a chapter
can turn one off: ``replace(recipe_options(cfg), triplet_weight=0)``.
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass, fields, replace
from typing import Any

from prreid_lib.config import PART_NAMES, TrainConfig


@dataclass(frozen=True)
class RecipeOptions:
    """Training switches beyond :class:`~prreid_lib.config.TrainConfig`.

    ``sampler`` "random" | "pk"; ``scheduler`` "exp" | "cosine";
    ``optimizer`` "sgd" | "adam"; ``head_lr_mult``: the learning rate of the new
    layers (embedding and classifiers) over the backbone's, as in fine-tuning a
    pretrained start with a faster head; ``warmup_epochs``; ``bnneck``;
    ``label_smoothing``; ``triplet_weight`` (0: no triplet loss) and
    ``triplet_margin``; augmentation: ``flip`` probability, ``pad`` (0: no
    crop), ``color_jitter``; ``amp`` and ``channels_last`` (float16 autocast and
    channels-last memory on CUDA); ``cpu_bf16``: on a CPU with native bfloat16
    (AVX512-BF16 or AMX), bfloat16 autocast and channels-last memory (1.8x the
    float32 step on the 2-core reference machine; other CPUs train in float32).
    """

    sampler: str = "random"
    scheduler: str = "exp"
    optimizer: str = "sgd"
    head_lr_mult: float = 1.0
    warmup_epochs: int = 0
    bnneck: bool = False
    label_smoothing: float = 0.0
    triplet_weight: float = 0.0
    triplet_margin: float = 0.3
    flip: float = 0.5
    pad: int = 4
    color_jitter: float = 0.0
    amp: bool = True
    channels_last: bool = True
    cpu_bf16: bool = True


RECIPES: dict[str, RecipeOptions] = {
    "paper": RecipeOptions(),
    "strong": RecipeOptions(
        sampler="pk",
        scheduler="cosine",
        warmup_epochs=1,
        bnneck=True,
        label_smoothing=0.1,
        triplet_weight=1.0,
    ),
}


def recipe_options(cfg: TrainConfig, **overrides: Any) -> RecipeOptions:
    """Options of ``cfg.recipe`` with ``overrides`` (:class:`RecipeOptions` field names) applied."""
    if cfg.recipe not in RECIPES:
        raise ValueError(f"TrainConfig.recipe must be one of {sorted(RECIPES)}, got {cfg.recipe!r}")
    return replace(RECIPES[cfg.recipe], **overrides)


def active_parts(cfg: TrainConfig) -> tuple[str, ...]:
    """Part branches with ``lambda_p > 0``, in ``PART_NAMES`` order (weight 0: no branch)."""
    unknown = [p for p in cfg.lambda_p if p not in PART_NAMES]
    if unknown:
        raise ValueError(f"lambda_p has unknown parts {unknown}; valid parts: {PART_NAMES}")
    return tuple(p for p in PART_NAMES if float(cfg.lambda_p.get(p, 0.0)) > 0)


class TrainConfigError(ValueError):
    """A bad training parameter; ``field`` names it (``epochs``, ``lambda_p.window``)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)

    def __reduce__(self):
        return (type(self), (self.field, str(self)))


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


CHOICES: dict[str, tuple[str, ...]] = {
    "sampler": ("random", "pk"),
    "scheduler": ("exp", "cosine"),
    "optimizer": ("sgd", "adam"),
}
"""The valid strings of the string-valued :class:`RecipeOptions` fields."""


MAX_EPOCHS = 1000
"""Most epochs a run may ask for (the paper's recipe trains tens; re-id baselines 120)."""
MAX_BATCH_SIZE = 4096
"""Largest training batch (images per step); also bounds ``num_instances``."""


def validate_train_config(cfg: TrainConfig, options: RecipeOptions | None = None) -> None:
    """Raise :class:`TrainConfigError` naming the first bad field of ``cfg`` or ``options``.

    Checked before anything is written or allocated: integers with upper
    bounds (``epochs`` 1..:data:`MAX_EPOCHS`, ``batch_size`` and
    ``num_instances`` 1..:data:`MAX_BATCH_SIZE`, ``feat_dim``
    1..:data:`~prreid_lib.model.MAX_FEAT_DIM`; ``input_size`` a multiple of the
    output stride, 16 with ``last_stride`` 1, else 32, from 32 to
    :data:`~prreid_lib.model.MAX_INPUT_SIZE`; ``pad`` at most ``input_size``),
    positive ``lr``, ``lr_gamma`` in (0, 1], non-negative ``momentum``,
    ``weight_decay`` and part weights, booleans for switches, and known names
    for ``arch``, ``recipe``, ``sampler``, ``scheduler`` and ``optimizer``.
    """
    from prreid_lib.model import ARCHS, MAX_FEAT_DIM, MAX_INPUT_SIZE

    def bad(name: str, rule: str, value: Any) -> TrainConfigError:
        return TrainConfigError(name, f"{name} must be {rule}, got {value!r}")

    highs = {
        "epochs": MAX_EPOCHS,
        "batch_size": MAX_BATCH_SIZE,
        "num_instances": MAX_BATCH_SIZE,
        "feat_dim": MAX_FEAT_DIM,
    }
    for name, high in highs.items():
        value = getattr(cfg, name)
        if not _is_int(value) or not 1 <= value <= high:
            raise bad(name, f"an integer >= 1 and <= {high}", value)
    size, step = cfg.input_size, 16 if cfg.last_stride == 1 else 32
    if not _is_int(size) or not 32 <= size <= MAX_INPUT_SIZE or size % step:
        rule = (
            f"an integer multiple of {step} (the backbone's output stride) from 32 to "
            f"{MAX_INPUT_SIZE} (the paper's largest is 512)"
        )
        raise bad("input_size", rule, size)
    if not _is_number(cfg.lr) or cfg.lr <= 0:
        raise bad("lr", "a positive number", cfg.lr)
    if not _is_number(cfg.lr_gamma) or not 0 < cfg.lr_gamma <= 1:
        raise bad("lr_gamma", "a number in (0, 1]", cfg.lr_gamma)
    for name in ("momentum", "weight_decay"):
        value = getattr(cfg, name)
        if not _is_number(value) or value < 0:
            raise bad(name, "a number >= 0", value)
    if not isinstance(cfg.lambda_p, dict):
        raise bad("lambda_p", "a mapping part -> weight", cfg.lambda_p)
    for part, weight in cfg.lambda_p.items():
        if part not in PART_NAMES:
            raise bad(f"lambda_p.{part}", f"a part among {', '.join(PART_NAMES)}", part)
        if not _is_number(weight) or weight < 0:
            raise bad(f"lambda_p.{part}", "a number >= 0", weight)
    if not isinstance(cfg.use_global, bool):
        raise bad("use_global", "true or false", cfg.use_global)
    if cfg.arch not in ARCHS:
        raise bad("arch", f"one of {', '.join(ARCHS)}", cfg.arch)
    if cfg.last_stride not in (1, 2) or not _is_int(cfg.last_stride):
        raise bad("last_stride", "1 or 2", cfg.last_stride)
    if cfg.recipe not in RECIPES:
        raise bad("recipe", f"one of {', '.join(RECIPES)}", cfg.recipe)
    if cfg.pretrained is not None and not isinstance(cfg.pretrained, str):
        raise bad("pretrained", "null or the path of a weights file", cfg.pretrained)
    if options is None:
        return
    for name, valid in CHOICES.items():
        value = getattr(options, name)
        if value not in valid:
            raise bad(name, f"one of {', '.join(valid)}", value)
    for name in ("bnneck", "amp", "channels_last", "cpu_bf16"):
        value = getattr(options, name)
        if not isinstance(value, bool):
            raise bad(name, "true or false", value)
    for name, high, what in (("warmup_epochs", MAX_EPOCHS, ""), ("pad", size, " (input_size)")):
        value = getattr(options, name)
        if not _is_int(value) or not 0 <= value <= high:
            raise bad(name, f"an integer >= 0 and <= {high}{what}", value)
    for name in ("triplet_weight", "triplet_margin", "color_jitter"):
        value = getattr(options, name)
        if not _is_number(value) or value < 0:
            raise bad(name, "a number >= 0", value)
    if not _is_number(options.head_lr_mult) or options.head_lr_mult <= 0:
        raise bad("head_lr_mult", "a number > 0", options.head_lr_mult)
    for name, top in (("flip", 1.0), ("label_smoothing", 1.0)):
        value = getattr(options, name)
        if not _is_number(value) or not 0 <= value <= top:
            raise bad(name, f"a number in [0, {top:g}]", value)
    if options.sampler == "pk" and cfg.batch_size < cfg.num_instances:
        raise TrainConfigError(
            "batch_size",
            f"batch_size must be >= num_instances ({cfg.num_instances}) for the pk sampler, "
            f"got {cfg.batch_size!r}",
        )


def learning_rate(cfg: TrainConfig, opt: RecipeOptions, epoch: int, step: int, steps: int) -> float:
    """Learning rate at ``step`` of ``steps`` in ``epoch`` (0-based) for the chosen schedule."""
    t = epoch + step / max(steps, 1)
    if t < opt.warmup_epochs:
        return cfg.lr * (0.1 + 0.9 * t / opt.warmup_epochs)
    if opt.scheduler == "exp":
        return cfg.lr * cfg.lr_gamma**epoch
    if opt.scheduler == "cosine":
        span = max(cfg.epochs - opt.warmup_epochs, 1e-9)
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * (t - opt.warmup_epochs) / span))
    raise ValueError(f"scheduler must be 'exp' or 'cosine', got {opt.scheduler!r}")


def apply_overrides(
    cfg: TrainConfig, options: RecipeOptions, assignments: list[str]
) -> tuple[TrainConfig, RecipeOptions]:
    """Apply ``key=value`` strings (``epochs=3``, ``lambda_p.window=0``, ``bnneck=true``).

    Keys name a field of :class:`TrainConfig` or :class:`RecipeOptions`
    (``lambda_p.<part>`` one part weight); values are parsed as JSON (so
    ``true``, ``null``, ``0.5``), falling back to the plain string. Setting
    ``recipe`` resets the options to that recipe's before the option keys apply.
    The result is checked by :func:`validate_train_config`; a bad value raises
    :class:`TrainConfigError` naming the ``--set`` item.
    """
    cfg_fields = {f.name for f in fields(TrainConfig)}
    opt_fields = {f.name for f in fields(RecipeOptions)}
    cfg_set: dict[str, Any] = {}
    opt_set: dict[str, Any] = {}
    lambdas = dict(cfg.lambda_p)
    for item in assignments:
        key, sep, text = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r}: expected key=value")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        if key.startswith("lambda_p."):
            lambdas[key.split(".", 1)[1]] = value
        elif key in cfg_fields:
            cfg_set[key] = value
        elif key in opt_fields:
            opt_set[key] = value
        else:
            raise ValueError(
                f"--set {key}: unknown field; TrainConfig fields: {', '.join(sorted(cfg_fields))}; "
                f"recipe options: {', '.join(sorted(opt_fields))}"
            )
    given = {item.partition("=")[0]: item for item in assignments}
    try:
        cfg = replace(cfg, **(cfg_set | {"lambda_p": lambdas}))
        validate_train_config(cfg)
        base = recipe_options(cfg) if "recipe" in cfg_set else options
        options = replace(base, **opt_set)
        validate_train_config(cfg, options)
    except TrainConfigError as err:
        if err.field not in given:
            raise
        raise TrainConfigError(err.field, f"--set {given[err.field]}: {err}") from None
    return cfg, options
