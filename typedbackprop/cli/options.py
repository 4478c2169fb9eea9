"""What the commands share: argument types, the network options, and the checks made before work.

Every check here runs before any time or memory is spent, and reports a bad argument as
argparse does: the command's usage and one line that names the option (``--eps``), then exit
status 2. A type function raises ``argparse.ArgumentTypeError``; a check that needs several
arguments raises :class:`UsageError`.
"""

import argparse
import math
import os
import sys
import textwrap
from collections.abc import Mapping, Sequence
from typing import cast, get_args

from typedbackprop import ActivationName
from typedbackprop.gradcheck import DEFAULT_EPS
from typedbackprop.nn import LOSSES, OutputActivationName
from typedbackprop.recipes import RECIPES

__all__ = [
    "UsageError",
    "GRADCHECK_EPS",
    "MODELS",
    "OPTION_MODELS",
    "RECURRENT_MODELS",
    "SCOPE_RULE",
    "check_option_models",
    "mark_option_models",
    "fill_defaults",
    "usable_cores",
    "check_threads",
    "PERCEPTRON_LOSSES",
    "NETWORK_DEFAULTS",
    "MAX_SEED",
    "MAX_VALUES",
    "layer_sizes",
    "hidden_sizes",
    "positive_int",
    "finite_positive_float",
    "seed",
    "add_network_options",
    "output_for",
    "check_network",
    "require_memory",
    "parameter_count",
    "plural",
    "warn",
]


class UsageError(Exception):
    """A bad argument found after parsing; reported like argparse's own errors (status 2)."""


GRADCHECK_EPS = DEFAULT_EPS
"""The central-difference step of ``demo`` and ``gradcheck``: the library's one default step
(:data:`typedbackprop.gradcheck.DEFAULT_EPS`, where that choice is explained)."""

PERCEPTRON_LOSSES: tuple[str, ...] = tuple(
    name for name, entry in LOSSES.items() if entry.per_example
)
"""The losses ``--loss`` offers a perceptron (``SIZES``, ``train --dataset``): those of
:data:`~typedbackprop.nn.losses.LOSSES` with one target per example; a sequence model's loss
over every token has nothing to compare with a perceptron's ``(out, batch)`` output."""

MAX_SEED = 2**32 - 1
"""The largest seed: scikit-learn's splits and data generators take seeds in ``[0, 2³²)``."""

MAX_VALUES = 50_000_000
"""The most float64 values (400 MB) a command may hold at once; a larger request is refused
with an estimate before anything is allocated, rather than killed by the system for memory."""


MODELS: tuple[str, ...] = ("mlp", *RECIPES)
"""Every ``--model``: the perceptron of ``SIZES`` (``mlp``), then the recipes' models."""

RECURRENT_MODELS: tuple[str, ...] = tuple(
    name for name, recipe in RECIPES.items() if recipe.dataset == "recall"
)
"""The recurrent models (RNN, LSTM, GRU on ``recall``): ``--truncate`` is theirs, and ``--plot``
draws their vanishing gradient."""

OPTION_MODELS: dict[str, tuple[str, ...]] = {
    "activation": ("mlp",),
    "output_activation": ("mlp",),
    "loss": ("mlp",),
    "layout": ("mlp",),
    "hidden": ("mlp",),
    "init": ("mlp",),
    "batch_size": ("mlp",),
    "lr": ("mlp",),
    "momentum": ("mlp",),
    "plot": ("mlp", *RECURRENT_MODELS),
    "animate": ("mlp",),
    "epochs": ("mlp", *(name for name, recipe in RECIPES.items() if recipe.units == "epoch")),
    "steps": tuple(name for name, recipe in RECIPES.items() if recipe.units == "step"),
    "clip": tuple(RECIPES),
    "truncate": RECURRENT_MODELS,
}
"""The options (by argparse ``dest``) that apply to some models only, and those models; an
option not listed applies to every model. The one place ``explain``, ``gradcheck`` and ``train``
consult: :func:`check_option_models` refuses what does not apply, :func:`mark_option_models`
says so in ``--help``. A recipe's model brings its own network, loss and training settings;
its training is counted in epochs or in steps (:attr:`~typedbackprop.recipes.Recipe.units`)."""

SCOPE_RULE = (
    "An option marked '--model ... only' does not apply to the other models: given with "
    "another --model it is an error (exit status 2), never silently ignored."
)
"""The rule of :data:`OPTION_MODELS`, as each command's ``--help`` states it."""


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def _models(models: Sequence[str]) -> str:
    """``"--model mlp"``, ``"--model mlp or convnet"``."""
    return "--model " + " or ".join(models)


def check_option_models(args: argparse.Namespace) -> None:
    """Refuse an option given (not ``None``) that does not apply to ``args.model``.

    Raises
    ------
    UsageError
        ``--activation is for --model mlp only (the perceptron), not --model convnet``.
    """
    for dest, models in OPTION_MODELS.items():
        if getattr(args, dest, None) is not None and args.model not in models:
            who = "the perceptron (--model mlp)" if models == ("mlp",) else _models(models)
            raise UsageError(
                f"{_flag(dest)} is for {who} only, not --model {args.model} (an option that "
                "does not apply to the chosen model is an error)"
            )


def mark_option_models(parser: argparse.ArgumentParser) -> None:
    """End the help of each option of :data:`OPTION_MODELS` with the models it is for, and
    state the rule in the command's epilog."""
    for action in parser._actions:
        models = OPTION_MODELS.get(action.dest)
        if models is not None and action.help is not None:
            action.help += f" ({_models(models)} only)"
    parser.epilog = textwrap.fill(SCOPE_RULE, 79)  # wrapped by hand: train's help is raw text


def fill_defaults(args: argparse.Namespace, defaults: Mapping[str, object]) -> None:
    """Give each option of ``defaults`` that the command has and was not given its default
    (after :func:`check_option_models`, which must see what was given)."""
    for dest, value in defaults.items():
        if hasattr(args, dest) and getattr(args, dest) is None:
            setattr(args, dest, value)


def usable_cores() -> int:
    """The cores this process may run on: its affinity mask where the system has one, else
    ``os.cpu_count()``."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def check_threads(threads: int | None) -> None:
    """Warn of ``--threads`` above the usable cores: the extra threads only wait their turn."""
    cores = usable_cores()
    if threads is not None and threads > cores:
        warn(
            f"--threads {threads} is more than the {plural(cores, 'core')} this process may "
            f"use: the extra threads only wait for a core (use at most --threads {cores})"
        )


def _whole_numbers(text: str, what: str, example: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{what} must be comma-separated whole numbers such as {example}; got {text!r}"
        ) from None


def layer_sizes(text: str) -> tuple[int, ...]:
    """``"3,4,4,2"`` → ``(3, 4, 4, 2)``: at least two sizes, each at least 1."""
    sizes = _whole_numbers(text, "layer sizes", "3,4,4,2")
    if len(sizes) < 2 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"need at least two layer sizes, each at least 1 (input,...,output); got {text!r}"
        )
    return sizes


def hidden_sizes(text: str) -> tuple[int, ...]:
    """``"8,8"`` → ``(8, 8)``: each hidden size at least 1."""
    sizes = _whole_numbers(text, "hidden sizes", "20 or 8,8")
    if min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"every hidden size must be at least 1; got {text!r}")
    return sizes


def positive_int(text: str) -> int:
    """A whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, got {value}")
    return value


def finite_positive_float(text: str) -> float:
    """A positive number; ``inf`` and ``nan`` are refused (they only make NaN tables)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value:g}")
    return value


def seed(text: str) -> int:
    """A seed: a whole number in ``[0, 2³²)``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a seed must be at least 0, got {value}")
    if value > MAX_SEED:
        raise argparse.ArgumentTypeError(f"a seed must be at most 2**32 - 1, got {value}")
    return value


NETWORK_DEFAULTS: dict[str, object] = {"activation": "sigmoid", "loss": "squared_error"}
"""``--activation`` and ``--loss`` of ``explain`` and ``gradcheck`` when not given; filled in
by :func:`fill_defaults` after :func:`check_option_models` has seen what was given."""


def add_network_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """``--activation``, ``--output-activation`` and ``--loss``; ``defaults``: their help names
    :data:`NETWORK_DEFAULTS` (argparse's default stays ``None``, so that a model can tell an
    option given from one left out)."""
    parser.add_argument(
        "--activation",
        choices=get_args(ActivationName),
        help="hidden layers' activation" + (" (default: sigmoid)" if defaults else ""),
    )
    parser.add_argument(
        "--output-activation",
        choices=get_args(OutputActivationName),
        default=None,
        help="last layer's activation (default: identity, or what the loss needs)",
    )
    parser.add_argument(
        "--loss",
        choices=PERCEPTRON_LOSSES,
        help="loss" + (" (default: squared_error)" if defaults else ""),
    )


def output_for(loss: str, output_activation: str | None) -> OutputActivationName:
    """The output activation given, or else the one the loss is computed from, or identity."""
    if output_activation is None:
        output_activation = LOSSES[loss].output_activation or "identity"
    return cast(OutputActivationName, output_activation)


def check_network(sizes: Sequence[int], output_activation: str, loss: str) -> None:
    """Refuse an output activation its loss does not go with; warn of a constant softmax.

    Parameters
    ----------
    sizes
        The layer sizes, input first.
    output_activation, loss
        The names given (argparse has checked each one on its own).

    Raises
    ------
    UsageError
        For a loss computed from the logits of another output activation, in option words:
        ``--loss cross_entropy needs --output-activation softmax``.
    """
    needed = LOSSES[loss].output_activation
    if needed is not None and output_activation != needed:
        raise UsageError(
            f"--loss {loss} is computed from the logits of a {needed} output layer: use "
            f"--output-activation {needed} (or leave it out), not {output_activation}"
        )
    if output_activation == "softmax" and sizes[-1] == 1:
        warn(
            "softmax over 1 output is constant (always 1): the loss cannot change and every "
            "gradient is 0; for two classes use 1 output with --output-activation sigmoid"
        )


def parameter_count(sizes: Sequence[int]) -> int:
    """The number of weights and biases of a network of these layer sizes."""
    return sum((n_in + 1) * n_out for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True))


def require_memory(values: int, what: str, advice: str) -> None:
    """Refuse, before allocating, a command that would hold more than :data:`MAX_VALUES`.

    Parameters
    ----------
    values
        The estimated number of float64 values the command holds at once.
    what
        What needs them (``"3-4-2 with --batch 1000000000"``).
    advice
        What to change (``"use a smaller --batch"``).

    Raises
    ------
    UsageError
        ``... needs about 72 GB (9,000,000,018 values); the limit is 400 MB: use ...``.
    """
    if values > MAX_VALUES:
        raise UsageError(
            f"{what} needs about {_bytes(8 * values)} ({values:,} float64 values), more than "
            f"the {_bytes(8 * MAX_VALUES)} this command allows: {advice}"
        )


def _bytes(count: int) -> str:
    """``"72 GB"``: a size in bytes, in the largest unit it fills."""
    for unit, size in [("TB", 10**12), ("GB", 10**9), ("MB", 10**6)]:
        if count >= size:
            value = count / size
            return f"{value:.3g} {unit}" if value < 1000 else f"{value:,.0f} {unit}"
    return f"{count:,} bytes"


def plural(count: int, word: str) -> str:
    """``"1 input"``, ``"3 inputs"``."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def warn(message: str) -> None:
    """Print ``typedbackprop: warning: ...`` on standard error (the work goes on)."""
    print(f"typedbackprop: warning: {message}", file=sys.stderr)
