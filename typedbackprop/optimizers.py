"""Optimizers over any layers: gradient descent with momentum, and Adam with decoupled weight decay.

The one place where a parameter update is written: the training loops use these (SGD in
:func:`~typedbackprop.training.train_network`, any of them in
:func:`~typedbackprop.training.train_steps`).

An optimizer is a frozen record of its settings with two methods: ``init(layers)`` returns its
state, and ``step(layers, grads, state)`` returns new layers and a new state. The state is
typed like the parameters: per layer, a record of the layer's own type holding, in place of
each parameter, that parameter's velocity (SGD) or its first and second moments (Adam), so
every moment has its parameter's shape and dimension names. ``step`` writes nothing in place:
the caller's layers, gradients and state are left as they were, and a step is a function of
its arguments. :meth:`SGD.step_in_place` is the same step written into arrays the caller owns,
for a loop that keeps its own copies and wants no new arrays per step.

Every rule below is per parameter array ``θ`` with gradient ``g = ∂L/∂θ``, elementwise.
:func:`clip_by_global_norm` is the one rule over all of them together: it rescales the
gradients before a step (off unless training is given ``clip``).
"""

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from typedbackprop.checking import Array
from typedbackprop.nn.tree import leaves, map_leaves, replace_leaves

__all__ = [
    "SGD",
    "SGDState",
    "AdamW",
    "AdamWState",
    "OPTIMIZERS",
    "all_but_weights",
    "clip_by_global_norm",
    "global_norm",
]


def _zeros(layers: Sequence[Any]) -> list[Any]:
    """Per layer, a record of its type with zeros for every parameter (``None`` without any)."""
    return [map_leaves(np.zeros_like, layer) if leaves(layer) else None for layer in layers]


def _holder(layer: Any, path: str) -> tuple[Any, str]:
    """The record that holds the parameter at ``path`` of ``layer`` (the layer itself, or one
    of the layers it is made of), and the parameter's field name there."""
    *through, name = path.split(".")
    holder = layer
    for step in through:
        holder = holder[int(step)] if isinstance(holder, tuple) else getattr(holder, step)
    return holder, name


def _check(layers: Sequence[Any], grads: Sequence[Any], *states: Sequence[Any]) -> None:
    for sequence in (grads, *states):
        if len(sequence) != len(layers):
            raise ValueError(f"{len(layers)} layers but {len(sequence)} gradients or states")
    for index, (layer, grad) in enumerate(zip(layers, grads, strict=True)):
        if (grad is None) != (not leaves(layer)):
            raise ValueError(f"layer {index}: a gradient exactly when the layer has parameters")
        if grad is not None and type(grad) is not type(layer):
            raise TypeError(
                f"layer {index} is a {type(layer).__name__}; its gradient is a "
                f"{type(grad).__name__}"
            )


def global_norm(grads: Sequence[Any]) -> float:
    """``‖g‖``: the Euclidean norm of every gradient of every layer, as one vector.

    Parameters
    ----------
    grads
        ``∂L/∂θ`` per layer, records of the layers' types (``None`` without parameters).

    Returns
    -------
    float
        ``√(Σ_θ Σ_i g_i²)`` over every leaf of every layer (the parts of a layer made of
        layers included), computed as PyTorch's ``clip_grad_norm_`` computes it: the norm of
        the per-array norms.
    """
    norms = [
        float(np.linalg.norm(g.ravel())) for grad in grads if grad is not None
        for g in leaves(grad).values()
    ]  # fmt: skip
    return float(np.linalg.norm(norms)) if norms else 0.0


def clip_by_global_norm(
    grads: Sequence[Any], max_norm: float, eps: float = 0.0
) -> tuple[list[Any], float]:
    """Scale every gradient by one factor so that their global norm is at most ``max_norm``.

    Parameters
    ----------
    grads
        ``∂L/∂θ`` per layer, records of the layers' types (``None`` without parameters); not
        modified.
    max_norm
        The largest global norm the step may see, positive and finite.
    eps
        Added to the norm in the factor's denominator; PyTorch's ``clip_grad_norm_`` adds
        ``1e-6``. 0 by default: gradients already within ``max_norm`` are returned unchanged,
        and those beyond it come back with a norm of ``max_norm`` exactly (up to rounding).

    Returns
    -------
    grads, norm
        The clipped gradients, records of the same types (the arguments themselves where the
        factor is 1), and ``‖g‖`` before clipping (to log: a norm far above ``max_norm`` step
        after step says the clip is doing the training's work).

    Raises
    ------
    ValueError
        For a ``max_norm`` that is not positive and finite, or a negative ``eps``.

    Notes
    -----
    With ``‖g‖ = √(Σ_θ Σ_i g_i²)`` over every array of every layer together,

    ``g ← g · min(1, max_norm / (‖g‖ + eps))`` for every ``g``.

    One factor for all: the direction of the whole step is kept, only its length is capped,
    unlike clipping each array (or each entry) on its own. It is applied to the gradients
    before the optimizer's step: clipped after it, the step has already been taken with the
    unclipped gradient (and Adam's moments have already taken it in). A recurrent network
    needs it most: its gradient is a product over the steps and can grow by orders of
    magnitude in one batch.
    """
    if not (math.isfinite(max_norm) and max_norm > 0) or not eps >= 0:
        raise ValueError(
            f"clipping needs a positive, finite max_norm and eps >= 0; got {max_norm}, {eps}"
        )
    norm = global_norm(grads)
    if norm + eps <= max_norm:  # the factor is 1 (and a norm of 0 divides nothing)
        return list(grads), norm
    factor = max_norm / (norm + eps)
    clipped = [None if grad is None else map_leaves(lambda g: g * factor, grad) for grad in grads]
    return clipped, norm


@dataclass(frozen=True, slots=True)
class SGDState:
    """SGD's state: per layer, a record of the layer's type holding each parameter's velocity."""

    velocities: list[Any]
    """``v`` for each parameter (``None`` for a layer without parameters)."""


@dataclass(frozen=True, slots=True)
class SGD:
    """Stochastic gradient descent with (classical) momentum.

    Parameters
    ----------
    learning_rate
        ``η``.
    momentum
        ``μ`` in ``[0, 1)``; 0 gives plain gradient descent.

    Notes
    -----
    ``v ← μ v − η g`` (``v = 0`` at the start), then ``θ ← θ + v``: PyTorch's
    ``torch.optim.SGD(lr=η, momentum=μ)``, whose buffer is ``b = −v/η``, with a constant ``η``.
    """

    learning_rate: float
    momentum: float = 0.0

    def __post_init__(self) -> None:
        if not self.learning_rate > 0 or not 0 <= self.momentum < 1:
            raise ValueError(
                f"SGD needs learning_rate > 0 and momentum in [0, 1); got {self.learning_rate}, "
                f"{self.momentum}"
            )

    def init(self, layers: Sequence[Any]) -> SGDState:
        """Zero velocities, one record per layer."""
        return SGDState(_zeros(layers))

    def step(
        self, layers: Sequence[Any], grads: Sequence[Any], state: SGDState
    ) -> tuple[list[Any], SGDState]:
        """One step: new layers and a new state; the arguments are not modified.

        Parameters
        ----------
        layers
            The current parameters (any layers).
        grads
            ``∂L/∂θ`` per layer, records of the layers' types (``None`` without parameters).
        state
            From :meth:`init` or the previous step.

        Returns
        -------
        layers, state
            The stepped parameters and the new velocities.
        """
        _check(layers, grads, state.velocities)
        new_layers: list[Any] = []
        velocities: list[Any] = []
        for layer, grad, velocity in zip(layers, grads, state.velocities, strict=True):
            if grad is None:
                new_layers.append(layer)
                velocities.append(None)
                continue
            velocity = map_leaves(
                lambda v, g: self.momentum * v - self.learning_rate * g, velocity, grad
            )
            velocities.append(velocity)
            new_layers.append(map_leaves(lambda theta, v: theta + v, layer, velocity))
        return new_layers, SGDState(velocities)

    def step_in_place(self, layers: Sequence[Any], grads: Sequence[Any], state: SGDState) -> None:
        """:meth:`step`, written into the arrays of ``layers`` and ``state``, which the caller owns.

        ``v *= μ``, ``v -= η g``, ``θ += v``: the same arithmetic as :meth:`step`, bit for bit,
        with no new array per step but ``η g``. The training loop
        (:func:`~typedbackprop.training.train_network`) steps its own copies of the layers this
        way. Unlike :meth:`step`, it does not check that ``grads`` and ``state`` match the layers
        (``state`` must come from :meth:`init` on these layers): it is the inner loop.

        Parameters
        ----------
        layers
            The current parameters, overwritten with the stepped ones.
        grads
            ``∂L/∂θ`` per layer, records of the layers' types (``None`` without parameters).
        state
            From :meth:`init` on ``layers``; its velocities are overwritten with the new ones.
        """
        for layer, grad, velocity in zip(layers, grads, state.velocities, strict=True):
            if grad is None:
                continue
            gradients, velocities = leaves(grad), leaves(velocity)
            for path, theta in leaves(layer).items():
                v = velocities[path]
                v *= self.momentum
                v -= self.learning_rate * gradients[path]
                theta += v


def all_but_weights(layer: Any, name: str) -> bool:
    """Whether the parameter ``name`` of ``layer`` is anything but a weight: for AdamW's ``exempt``.

    Parameters
    ----------
    layer
        The record the parameter belongs to (not read: the names say it in every family).
    name
        The parameter's field name in that record (the last part of its path: ``W_query``
        for a block's ``attention.W_query``).

    Returns
    -------
    bool
        False for the weights, the fields named ``W`` or ``W_...`` (dense and token-wise dense
        layers, convolution kernels, attention's projections, the feed-forward network's);
        True for everything else: biases (``b``, ``b_query``, ``b_up``, ...), the
        normalizations' scales and shifts (``gamma``, ``beta``, in a
        transformer block's layer norms too) and embedding tables (``table``). These are the
        parameters PyTorch users put in a parameter group with ``weight_decay=0``.
    """
    return not (name == "W" or name.startswith("W_"))


@dataclass(frozen=True, slots=True)
class AdamWState:
    """Adam's state: the step count, and per layer two records of the layer's type."""

    step: int
    """How many steps have been taken (the bias corrections need it)."""
    first_moments: list[Any]
    """``m``, a running mean of ``g``, for each parameter."""
    second_moments: list[Any]
    """``v``, a running mean of ``g²``, for each parameter."""


@dataclass(frozen=True, slots=True)
class AdamW:
    """Adam with decoupled weight decay (Loshchilov and Hutter's AdamW).

    Parameters
    ----------
    learning_rate
        ``η``.
    beta1, beta2
        The decay rates of the running means of ``g`` and ``g²``.
    eps
        Added to ``√v̂``, so that a parameter whose gradients are all 0 does not divide by 0.
    weight_decay
        ``λ``: each step shrinks every parameter that is not exempt by the factor ``1 − ηλ``,
        apart from the gradient.
    exempt
        The parameters spared the decay (they still take Adam's step): a collection of field
        names (``{"b", "gamma", "beta", "table"}``, in every layer that has them, the layers a
        layer is made of included; each must name a parameter of the layers :meth:`init` is
        given), or a predicate ``exempt(layer, name)`` such as :func:`all_but_weights`. Either
        way a parameter is named by its field in the record that holds it, the last part of
        its path (``gamma`` for a transformer block's ``attention_norm.gamma``), and the
        predicate is given that record (the block's ``LayerNorm``). Empty by default: every
        parameter decays.

    Notes
    -----
    At step ``t`` (from 1), for every parameter, in this order:

    - ``θ ← θ (1 − η λ)``: the decay, decoupled from the gradient (Adam with an L2 term in
      the loss would instead divide it by ``√v̂`` like the gradient);
    - ``m ← β₁ m + (1 − β₁) g`` and ``v ← β₂ v + (1 − β₂) g²``;
    - ``m̂ = m / (1 − β₁ᵗ)`` and ``v̂ = v / (1 − β₂ᵗ)``: ``m`` and ``v`` start at 0, and
      these undo that bias towards 0;
    - ``θ ← θ − η m̂ / (√v̂ + eps)``.

    This is ``torch.optim.AdamW`` with the same settings (PyTorch's defaults too), with the
    exempt parameters in a second parameter group whose ``weight_decay`` is 0; with none exempt,
    one group, decay on every parameter.
    """

    learning_rate: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.01
    exempt: Collection[str] | Callable[[Any, str], bool] = frozenset()

    def __post_init__(self) -> None:
        if not self.learning_rate > 0 or not self.eps > 0 or not self.weight_decay >= 0:
            raise ValueError(
                "AdamW needs learning_rate > 0, eps > 0 and weight_decay >= 0; got "
                f"{self.learning_rate}, {self.eps}, {self.weight_decay}"
            )
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ValueError(f"AdamW needs betas in [0, 1); got {self.beta1}, {self.beta2}")
        if isinstance(self.exempt, str):  # one name, not its letters
            object.__setattr__(self, "exempt", frozenset({self.exempt}))
        elif not callable(self.exempt):  # a set given is kept as a frozenset: hashable, fixed
            object.__setattr__(self, "exempt", frozenset(self.exempt))

    def decays(self, layer: Any, path: str) -> bool:
        """Whether the parameter at ``path`` of ``layer`` is decayed (is not :attr:`exempt`).

        ``path`` is the parameter's dotted path (``"W"``, ``"attention.W_query"``); the
        exemption is decided by its field name in the record that holds it.
        """
        holder, name = _holder(layer, path)
        if callable(self.exempt):
            return not self.exempt(holder, name)
        return name not in self.exempt

    def init(self, layers: Sequence[Any]) -> AdamWState:
        """Step 0, zero moments: two records per layer.

        Raises
        ------
        ValueError
            If an exempt name is the name of no parameter of ``layers`` (a misspelt name would
            otherwise exempt nothing, silently).
        """
        if not callable(self.exempt):
            names = {path.rpartition(".")[2] for layer in layers for path in leaves(layer)}
            if unknown := sorted(set(self.exempt) - names):
                raise ValueError(
                    f"AdamW's exempt names {unknown} name no parameter of these layers; their "
                    f"parameters are {sorted(names)}"
                )
        return AdamWState(0, _zeros(layers), _zeros(layers))

    def step(
        self, layers: Sequence[Any], grads: Sequence[Any], state: AdamWState
    ) -> tuple[list[Any], AdamWState]:
        """One step: new layers and a new state; the arguments are not modified.

        Parameters
        ----------
        layers
            The current parameters (any layers).
        grads
            ``∂L/∂θ`` per layer, records of the layers' types (``None`` without parameters).
        state
            From :meth:`init` or the previous step.

        Returns
        -------
        layers, state
            The stepped parameters, and the new step count and moments.
        """
        _check(layers, grads, state.first_moments, state.second_moments)
        t = state.step + 1
        step_size = self.learning_rate / (1.0 - self.beta1**t)  # η / (1 − β₁ᵗ)
        root_correction = math.sqrt(1.0 - self.beta2**t)  # √(1 − β₂ᵗ)
        decay = 1.0 - self.learning_rate * self.weight_decay
        new_layers: list[Any] = []
        firsts: list[Any] = []
        seconds: list[Any] = []
        for layer, grad, first, second in zip(
            layers, grads, state.first_moments, state.second_moments, strict=True
        ):
            if grad is None:
                new_layers.append(layer)
                firsts.append(None)
                seconds.append(None)
                continue
            first = map_leaves(lambda m, g: self.beta1 * m + (1.0 - self.beta1) * g, first, grad)
            second = map_leaves(
                lambda v, g: self.beta2 * v + (1.0 - self.beta2) * (g * g), second, grad
            )
            means, squares = leaves(first), leaves(second)
            stepped: dict[str, Array] = {}
            for path, theta in leaves(layer).items():
                # θ(1 − ηλ) − η m̂/(√v̂ + eps), with m̂ = m/(1 − β₁ᵗ) and √v̂ = √v/√(1 − β₂ᵗ);
                # an exempt θ is not decayed
                denominator: Array = np.sqrt(squares[path]) / root_correction + self.eps
                decayed = theta * decay if self.decays(layer, path) else theta
                stepped[path] = decayed - step_size * means[path] / denominator
            new_layers.append(replace_leaves(layer, stepped))
            firsts.append(first)
            seconds.append(second)
        return new_layers, AdamWState(t, firsts, seconds)


OPTIMIZERS: dict[str, type[SGD] | type[AdamW]] = {"sgd": SGD, "adamw": AdamW}
"""Every optimizer by name, for the command line and the model registry."""
