"""The recurrent layers' equations: one step of the cell, then backpropagation through time.

A sequence layer runs one cell at every step ``t`` of ``"features seq batch"``, the same weights
each time. ``explain`` prints the step's equations once, for step ``t`` (``h1_t`` is
``h1[:, t]``, ``a0[:, t]`` the step's input), then the backward pass: the state's gradient from
its two paths (the output at ``t``, and ``carry_h1_t``, what step ``t + 1`` carried back), the
cell's backward, and every parameter's gradient as the sum over ``t`` that BPTT makes of it, each
operand with the shape of the real array it stands for. The parameters are named as PyTorch's
equations name them: ``W_ii`` is the input gate's ``W_ih``, ``b_hn`` the new gate's ``b_hh``.
"""

from typedbackprop.checking import Array
from typedbackprop.explain.text import Names, Row, shape_text
from typedbackprop.nn.gru import GRU, GRUCache
from typedbackprop.nn.lstm import LSTM, LSTMCache
from typedbackprop.nn.rnn import RNN, RNNCache

__all__ = [
    "RNN_NAMES",
    "LSTM_NAMES",
    "GRU_NAMES",
    "rnn_forward_rows",
    "rnn_backward_rows",
    "lstm_forward_rows",
    "lstm_backward_rows",
    "gru_forward_rows",
    "gru_backward_rows",
]

LSTM_GATES = (("input_gate", "i"), ("forget_gate", "f"), ("cell_gate", "g"), ("output_gate", "o"))
"""The LSTM's gates, by record field and PyTorch's letter, in PyTorch's order."""
GRU_GATES = (("reset_gate", "r"), ("update_gate", "z"), ("new_gate", "n"))
"""The GRU's gates, by record field and PyTorch's letter, in PyTorch's order."""


def _gate_names(gates: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """``{"cell.input_gate.W_ih": "W_ii", ...}``: each gate's four parameters by their path."""
    return {
        f"cell.{field}.{name}": f"{name[0]}_{name[2]}{letter}"
        for field, letter in gates
        for name in ("W_ih", "b_ih", "W_hh", "b_hh")
    }


RNN_NAMES = {f"cell.{name}": name for name in ("W_ih", "b_ih", "W_hh", "b_hh")}
"""The tanh RNN's parameters in the equations, by their path in the record."""
LSTM_NAMES = _gate_names(LSTM_GATES)
"""The LSTM's parameters in the equations (``W_ii``, ``b_hf``, ...), by their path."""
GRU_NAMES = _gate_names(GRU_GATES)
"""The GRU's parameters in the equations (``W_ir``, ``b_hn``, ...), by their path."""


class _Step:
    """The names and shapes of one step's values, for layer ``names.number``."""

    def __init__(self, names: Names, x: Array, hidden: int) -> None:
        s, n = shape_text, names.number
        features, seq, batch = x.shape
        self.seq, self.n = seq, n
        self.state = s((hidden, batch))
        self.x = f"{names.input}[:, t] {s((features, batch))}"
        self.x_T = f"{names.input}[:, t].T {s((batch, features))}"
        self.h_T = f"h{n}_{{t-1}}.T {s((batch, hidden))}"
        self.W_ih, self.W_hh = s((hidden, features)), s((hidden, hidden))
        self.W_ih_T = s((features, hidden))
        self.bias = s((hidden, 1))
        self.b = s((hidden,))

    def value(self, name: str, t: str = "t") -> str:
        """``i1_t (32, 16)``: a ``"hidden batch"`` value of the step, with its shape."""
        return f"{name}{self.n}_{t} {self.state}"

    def affine(self, names: Names, letter: str) -> str:
        """``W_ii1 (h, f) @ a0[:, t] (f, b) + b_ii1[:, None] (h, 1) + W_hi1 ... + b_hi1 ...``."""
        return (
            f"{names.parameter(f'W_i{letter}')} {self.W_ih} @ {self.x} + "
            f"{names.parameter(f'b_i{letter}')}[:, None] {self.bias} + "
            f"{names.parameter(f'W_h{letter}')} {self.W_hh} @ "
            f"{self.value('h', '{t-1}')} + {names.parameter(f'b_h{letter}')}[:, None] "
            f"{self.bias}"
        )

    def loop(self, backward: bool = False) -> Row:
        last = self.seq - 1
        if backward:
            return (f"for t = {last}, …, 0:", "backpropagation through time: the last step first")
        return (f"for t = 0, …, {last}:", "one cell, the same weights, at every step")

    def state_gradient(self, names: Names) -> Row:
        return (
            f"grad_h{self.n}_t {self.state} = {names.grad_output}[:, t] {self.state} + "
            f"{self.value('carry_h')}",
            f"two paths: the output at t, and step t + 1, which read h_t "
            f"(carry_h{self.n}_{self.seq - 1}: the last state's gradient, or 0)",
        )

    def sums(self, names: Names, letter: str, delta: str, delta_hidden: str = "") -> list[Row]:
        """The BPTT sums of one gate's four parameters (of the cell's, for ``letter`` ``""``)."""
        delta_hidden = delta_hidden or delta
        W_ih, b_ih = names.parameter(f"W_i{letter}"), names.parameter(f"b_i{letter}")
        W_hh, b_hh = names.parameter(f"W_h{letter}"), names.parameter(f"b_h{letter}")
        if not letter:
            W_ih, b_ih = names.parameter("W_ih"), names.parameter("b_ih")
            W_hh, b_hh = names.parameter("W_hh"), names.parameter("b_hh")
        return [
            (
                f"grad_{W_ih} {self.W_ih} = Σ_t {delta} @ {self.x_T}",
                "shared by every step: Σ over seq, as grad_b sums over batch",
            ),
            (f"grad_{b_ih} {self.b} = Σ_t {delta}.sum(axis=1)", "Σ over seq and batch"),
            (
                f"grad_{W_hh} {self.W_hh} = Σ_t {delta_hidden} @ {self.h_T}",
                f"h{self.n}_{{-1}} is the initial state",
            ),
            (f"grad_{b_hh} {self.b} = Σ_t {delta_hidden}.sum(axis=1)", "Σ over seq and batch"),
        ]


def _output_row(names: Names, step: _Step, output: Array, last: str) -> Row:
    return (
        f"{names.output} {shape_text(output.shape)} = h{step.n}_t for every t, along seq",
        f"every state; {last} is the last state",
    )


def rnn_forward_rows(names: Names, layer: RNN, cache: RNNCache, output: Array) -> list[Row]:
    """One step of the tanh RNN, and the states it gives."""
    step = _Step(names, cache.x, layer.cell.W_hh.shape[0])
    n, last = step.n, step.seq - 1
    return [
        (f"{step.value('h', '{-1}')} = initial state", "zeros unless one is given"),
        step.loop(),
        (
            f"{step.value('z')} = {names.parameter('W_ih')} {step.W_ih} @ {step.x} + "
            f"{names.parameter('b_ih')}[:, None] {step.bias} + {names.parameter('W_hh')} "
            f"{step.W_hh} @ {step.value('h', '{t-1}')} + {names.parameter('b_hh')}[:, None] "
            f"{step.bias}",
            "both affine maps: sum over features, and over hidden",
        ),
        (f"{step.value('h')} = tanh({step.value('z')})", "the state, and the output at t"),
        _output_row(names, step, output, f"h{n}_{last}"),
    ]


def rnn_backward_rows(names: Names, layer: RNN, cache: RNNCache) -> list[Row]:
    """BPTT through the tanh RNN: the state's two paths, tanh's derivative, the sums over t."""
    step = _Step(names, cache.x, layer.cell.W_hh.shape[0])
    n, delta = step.n, step.value("delta")
    rows = [
        step.loop(backward=True),
        step.state_gradient(names),
        (
            f"{delta} = grad_h{n}_t {step.state} * (1 - {step.value('h')}**2)",
            "tanh' from the saved output",
        ),
        (
            f"{step.value('carry_h', '{t-1}')} = {names.parameter('W_hh')}.T {step.W_hh} @ {delta}",
            "what step t − 1's state gets from step t",
        ),
        *step.sums(names, "", delta),
    ]
    if names.input_gradient:
        rows.append(
            (
                f"{names.grad_input}[:, t] {shape_text(cache.x[:, 0].shape)} = "
                f"{names.parameter('W_ih')}.T {step.W_ih_T} @ {delta}",
                f"step t's slice of {names.grad_input} {shape_text(cache.x.shape)}",
            )
        )
    return rows


SQUASH = {
    "i": "sigmoid",
    "f": "sigmoid",
    "g": "tanh",
    "o": "sigmoid",
    "r": "sigmoid",
    "z": "sigmoid",
}
"""Each gate's nonlinearity (the GRU's ``n`` has its own row)."""
GATE_WORDS = {
    "i": "input gate",
    "f": "forget gate",
    "g": "cell gate, the candidate",
    "o": "output gate",
    "r": "reset gate",
    "z": "update gate",
}


def _gate_rows(names: Names, step: _Step, letter: str) -> list[Row]:
    """``z<γ>1_t = <both affine maps>`` and ``γ1_t = φ(z<γ>1_t)``."""
    pre = step.value(f"z{letter}")
    return [
        (f"{pre} = {step.affine(names, letter)}", f"{GATE_WORDS[letter]}: both affine maps"),
        (f"{step.value(letter)} = {SQUASH[letter]}({pre})", GATE_WORDS[letter]),
    ]


def _delta_row(step: _Step, letter: str) -> Row:
    gate, grad = step.value(letter), step.value(f"grad_{letter}")
    if SQUASH[letter] == "tanh":
        return (f"{step.value(f'delta_{letter}')} = {grad} * (1 - {gate}**2)", "tanh' from g")
    return (
        f"{step.value(f'delta_{letter}')} = {grad} * {gate} * (1 - {step.value(letter)})",
        f"sigmoid' from {letter}",
    )


def _carried(names: Names, step: _Step, deltas: list[tuple[str, str]], extra: str = "") -> str:
    """``W_hi1.T (h, h) @ delta_i1_t (h, b) + ...``: the previous state's share of every gate."""
    terms = [extra] if extra else []
    terms += [
        f"{names.parameter(f'W_h{letter}')}.T {step.W_hh} @ {delta}" for letter, delta in deltas
    ]
    return " + ".join(terms)


def _input_gradient(
    names: Names, step: _Step, cache_x: Array, deltas: list[tuple[str, str]], what: str
) -> Row:
    terms = " + ".join(
        f"{names.parameter(f'W_i{letter}')}.T {step.W_ih_T} @ {delta}" for letter, delta in deltas
    )
    return (
        f"{names.grad_input}[:, t] {shape_text(cache_x[:, 0].shape)} = {terms}",
        f"x_t fed {what}; step t's slice of {names.grad_input} {shape_text(cache_x.shape)}",
    )


def lstm_forward_rows(names: Names, layer: LSTM, cache: LSTMCache, output: Array) -> list[Row]:
    """One LSTM step: the four gates, the cell state, the state; and the states it gives."""
    step = _Step(names, cache.x, layer.cell.input_gate.W_hh.shape[0])
    n, last = step.n, step.seq - 1
    rows = [
        (
            f"{step.value('h', '{-1}')}, {step.value('c', '{-1}')} = initial state",
            "zeros unless one is given",
        ),
        step.loop(),
    ]
    for _, letter in LSTM_GATES:
        rows += _gate_rows(names, step, letter)
    rows += [
        (
            f"{step.value('c')} = {step.value('f')} * {step.value('c', '{t-1}')} + "
            f"{step.value('i')} * {step.value('g')}",
            "the cell state: elementwise",
        ),
        (
            f"{step.value('h')} = {step.value('o')} * tanh({step.value('c')})",
            "the state, and the output at t",
        ),
        _output_row(names, step, output, f"(h{n}_{last}, c{n}_{last})"),
    ]
    return rows


def lstm_backward_rows(names: Names, layer: LSTM, cache: LSTMCache) -> list[Row]:
    """BPTT through the LSTM: both states' gradients, the gates', the sums over t."""
    step = _Step(names, cache.x, layer.cell.input_gate.W_hh.shape[0])
    n, v = step.n, step.value
    grad_c = v("grad_c")
    rows = [
        step.loop(backward=True),
        step.state_gradient(names),
        (
            f"{v('grad_o')} = grad_h{n}_t {step.state} * tanh({v('c')})",
            "from h_t = o_t * tanh(c_t)",
        ),
        (
            f"{grad_c} = {v('carry_c')} + grad_h{n}_t {step.state} * {v('o')} * "
            f"(1 - tanh({v('c')})**2)",
            f"two paths: step t + 1's cell state (carry_c{n}_{step.seq - 1}: 0, or the last "
            "cell state's gradient), and h_t",
        ),
        (
            f"{v('grad_f')} = {grad_c} * {v('c', '{t-1}')}",
            "the previous cell state: what f multiplied",
        ),
        (f"{v('grad_i')} = {grad_c} * {v('g')}", "from i_t * g_t"),
        (f"{v('grad_g')} = {grad_c} * {v('i')}", "from i_t * g_t"),
        (
            f"{v('carry_c', '{t-1}')} = {grad_c} * {v('f')}",
            "the cell-state path: the forget gate alone, no weight, no derivative",
        ),
    ]
    rows += [_delta_row(step, letter) for _, letter in LSTM_GATES]
    deltas = [(letter, v(f"delta_{letter}")) for _, letter in LSTM_GATES]
    rows.append(
        (
            f"{v('carry_h', '{t-1}')} = {_carried(names, step, deltas)}",
            "h_{t−1} fed all four gates",
        )
    )
    for letter, delta in deltas:
        rows += step.sums(names, letter, delta)
    if names.input_gradient:
        rows.append(_input_gradient(names, step, cache.x, deltas, "all four gates"))
    return rows


def gru_forward_rows(names: Names, layer: GRU, cache: GRUCache, output: Array) -> list[Row]:
    """One GRU step: the reset and update gates, the candidate, the state; and the states."""
    step = _Step(names, cache.x, layer.cell.reset_gate.W_hh.shape[0])
    n, last, v = step.n, step.seq - 1, step.value
    rows = [(f"{v('h', '{-1}')} = initial state", "zeros unless one is given"), step.loop()]
    rows += _gate_rows(names, step, "r") + _gate_rows(names, step, "z")
    rows += [
        (
            f"{v('hn')} = {names.parameter('W_hn')} {step.W_hh} @ {v('h', '{t-1}')} + "
            f"{names.parameter('b_hn')}[:, None] {step.bias}",
            "the state's share of the candidate, its bias included",
        ),
        (
            f"{v('zn')} = {names.parameter('W_in')} {step.W_ih} @ {step.x} + "
            f"{names.parameter('b_in')}[:, None] {step.bias} + {v('r')} * {v('hn')}",
            "the reset gate scales hn, b_hn too (PyTorch's form)",
        ),
        (f"{v('n')} = tanh({v('zn')})", "new gate, the candidate"),
        (
            f"{v('h')} = (1 - {v('z')}) * {v('n')} + {v('z')} * {v('h', '{t-1}')}",
            "the state, and the output at t",
        ),
        _output_row(names, step, output, f"h{n}_{last}"),
    ]
    return rows


def gru_backward_rows(names: Names, layer: GRU, cache: GRUCache) -> list[Row]:
    """BPTT through the GRU: the state's paths, the candidate's two parts, the sums over t."""
    step = _Step(names, cache.x, layer.cell.reset_gate.W_hh.shape[0])
    n, v = step.n, step.value
    grad_h = f"grad_h{n}_t {step.state}"
    rows = [
        step.loop(backward=True),
        step.state_gradient(names),
        (f"{v('grad_n')} = {grad_h} * (1 - {v('z')})", "from (1 − z_t) * n_t"),
        (
            f"{v('grad_z')} = {grad_h} * ({v('h', '{t-1}')} - {v('n')})",
            "from (1 − z_t) * n_t + z_t * h_{t−1}",
        ),
        (f"{v('delta_n')} = {v('grad_n')} * (1 - {v('n')}**2)", "tanh' from n"),
        (f"{v('grad_hn')} = {v('delta_n')} * {v('r')}", "hn was scaled by r"),
        (f"{v('grad_r')} = {v('delta_n')} * {v('hn')}", "r scaled hn"),
        _delta_row(step, "r"),
        _delta_row(step, "z"),
    ]
    hidden_deltas = [("r", v("delta_r")), ("z", v("delta_z")), ("n", v("grad_hn"))]
    rows.append(
        (
            f"{v('carry_h', '{t-1}')} = "
            + _carried(names, step, hidden_deltas, f"{grad_h} * {v('z')}"),
            "h_{t−1} kept by z, and fed all three gates",
        )
    )
    rows += step.sums(names, "r", v("delta_r")) + step.sums(names, "z", v("delta_z"))
    rows += step.sums(names, "n", v("delta_n"), v("grad_hn"))
    rows[-1] = (rows[-1][0], "not b_in's sum: r scaled b_hn")
    if names.input_gradient:
        deltas = [("r", v("delta_r")), ("z", v("delta_z")), ("n", v("delta_n"))]
        rows.append(_input_gradient(names, step, cache.x, deltas, "all three gates"))
    return rows
