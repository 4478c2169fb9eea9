"""The PyTorch oracle of the recurrent tests: ``torch.nn.RNN``, ``LSTM`` and ``GRU`` in float64.

PyTorch lays a sequence out ``(seq, batch, features)`` and stacks a cell's gates into one
``weight_ih_l0`` of ``(gates·hidden, features)``, rows in its gate order (``i, f, g, o`` for the
LSTM, ``r, z, n`` for the GRU). typedbackprop lays it out ``"features seq batch"`` and gives each
gate its own record. The conversion happens here, at the oracle's boundary, both ways.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from typedbackprop.nn.gate import Gate


@dataclass(frozen=True)
class TorchResult:
    """Outputs and gradients from PyTorch, in typedbackprop's layout."""

    hidden_states: np.ndarray
    """``"hidden seq batch"``."""
    last_state: tuple[np.ndarray, ...]
    """``(h,)`` or ``(h, c)``, each ``"hidden batch"``."""
    gates: list[Gate]
    """The gradients of each gate, in PyTorch's order."""
    grad_x: np.ndarray
    """``"features seq batch"``."""
    grad_initial_state: tuple[np.ndarray, ...]
    """``(h,)`` or ``(h, c)``."""


MODULES = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}


def _tensor(value: np.ndarray) -> torch.Tensor:
    return torch.tensor(value, dtype=torch.float64)


def torch_recurrent(
    kind: str,
    gates: Sequence[Gate],
    x: np.ndarray,
    initial_state: Sequence[np.ndarray],
    grad_hidden_states: np.ndarray,
    grad_last_state: Sequence[np.ndarray],
    truncate: int | None = None,
) -> TorchResult:
    """Run PyTorch's layer with the gates' weights on ``x`` and backpropagate the gradients.

    ``truncate`` runs the sequence in chunks of that many steps and detaches the state
    between them: truncated BPTT as a PyTorch training loop writes it.
    """
    features, seq, batch = x.shape
    hidden = gates[0].W_hh.shape[0]
    module = MODULES[kind](features, hidden, dtype=torch.float64)
    with torch.no_grad():
        module.weight_ih_l0.copy_(_tensor(np.concatenate([gate.W_ih for gate in gates])))
        module.weight_hh_l0.copy_(_tensor(np.concatenate([gate.W_hh for gate in gates])))
        module.bias_ih_l0.copy_(_tensor(np.concatenate([gate.b_ih for gate in gates])))
        module.bias_hh_l0.copy_(_tensor(np.concatenate([gate.b_hh for gate in gates])))
    x_torch = _tensor(np.ascontiguousarray(x.transpose(1, 2, 0))).requires_grad_()
    initial = [_tensor(state.T[np.newaxis].copy()).requires_grad_() for state in initial_state]
    state = tuple(initial)
    chunk = seq if truncate is None else truncate
    outputs = []
    for start in range(0, seq, chunk):
        if start > 0:
            state = tuple(value.detach() for value in state)
        output, last = module(x_torch[start : start + chunk], state if kind == "lstm" else state[0])
        state = last if kind == "lstm" else (last,)
        outputs.append(output)
    output = torch.cat(outputs)  # (seq, batch, hidden)
    loss = (output * _tensor(grad_hidden_states.transpose(1, 2, 0))).sum()
    for value, grad in zip(state, grad_last_state, strict=True):
        loss = loss + (value[0] * _tensor(grad.T)).sum()
    loss.backward()

    def split(stacked: torch.Tensor) -> list[np.ndarray]:
        return list(np.split(stacked.detach().numpy(), len(gates)))

    grads = [
        Gate(*parts)
        for parts in zip(
            split(module.weight_ih_l0.grad),
            split(module.bias_ih_l0.grad),
            split(module.weight_hh_l0.grad),
            split(module.bias_hh_l0.grad),
            strict=True,
        )
    ]
    return TorchResult(
        output.detach().numpy().transpose(2, 0, 1),
        tuple(value[0].detach().numpy().T for value in state),
        grads,
        x_torch.grad.numpy().transpose(2, 0, 1),
        tuple(value.grad.numpy()[0].T for value in initial),
    )


def random_gate(rng: np.random.Generator, features: int, hidden: int, scale: float) -> Gate:
    """A gate with entries of about ``scale``: PyTorch's initialisation is ``±1/√hidden``."""
    return Gate(
        rng.standard_normal((hidden, features)) * scale,
        rng.standard_normal(hidden) * scale,
        rng.standard_normal((hidden, hidden)) * scale,
        rng.standard_normal(hidden) * scale,
    )
