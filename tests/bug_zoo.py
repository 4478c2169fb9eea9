"""The bug zoo: deliberately wrong copies of typedbackprop functions, one classic mistake each.

Every function here is a real typedbackprop function with one line changed, annotated and wrapped
in ``checked`` exactly like the original, so it meets the same defences. The line that differs
is marked ``# BUG``. ``tests/test_bug_zoo.py`` asserts which defence catches each one (the runtime
shape check, mypy, the gradient check, or only a comparison with an independent implementation)
and that the original passes the same defence; ``docs/bug-zoo.md`` shows these very functions,
included from this file, so the page and the tests cannot disagree.

The ``# --8<-- [start:name]`` comments mark the sections the documentation includes.
"""

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from jaxtyping import Float

from typedbackprop import Array, checked
from typedbackprop.checking import static_jaxtyping
from typedbackprop.nn import sigmoid_forward
from typedbackprop.nn.activations import sigmoid_backward, tanh_backward
from typedbackprop.nn.attention import attention_scores, attention_weights, weighted_values
from typedbackprop.nn.dropout import DropoutCache
from typedbackprop.nn.gate import gate_backward
from typedbackprop.nn.gru import GRUCell, GRUCellCache
from typedbackprop.nn.lstm import LSTMCell, LSTMCellCache
from typedbackprop.nn.pooling import MaxPool2dCache, window_offset
from typedbackprop.nn.rnn import RNN, RNNCache, RNNCell, rnn_cell_add, rnn_cell_backward
from typedbackprop.optimizers import clip_by_global_norm

__all__ = [
    "affine_grad_params_no_transpose",
    "affine_grad_params_swapped_order",
    "affine_grad_input_no_transpose",
    "affine_grad_input_upstream_first",
    "affine_grad_params_bias_wrong_axis",
    "affine_forward_bias_wrong_axis",
    "affine_backward_bias_wrong_axis",
    "sigmoid_backward_at_a",
    "softmax_backward_diagonal",
    "squared_error_without_mean",
    "softmax_forward_unstable",
    "binary_cross_entropy_with_epsilon",
    "relu_backward_float64",
    "sigmoid_backward_in_place",
    "attention_scores_queries_first",
    "attention_mask_after_softmax",
    "attention_scores_unscaled",
    "attention_backward_unscaled",
    "maxpool2d_backward_assign",
    "batchnorm_grad_input_no_variance_term",
    "dropout_backward_unscaled",
    "rnn_backward_assign",
    "rnn_backward_no_carry",
    "lstm_cell_backward_forget_with_c_new",
    "gru_cell_backward_z_swapped",
    "clipped_step_after_the_update",
]


# --8<-- [start:grad_W_no_transpose]
@checked
@static_jaxtyping("out inp batch")
def affine_grad_params_no_transpose(
    grad_z: Float[Array, "out batch"],
    a_prev: Float[Array, "inp batch"],
) -> tuple[Float[Array, "out inp"], Float[Array, " out"]]:
    grad_W = grad_z @ a_prev  # BUG: (out, batch) @ (inp, batch) needs inp == batch, and sums wrong
    grad_b = grad_z.sum(axis=1)
    return grad_W, grad_b
    # --8<-- [end:grad_W_no_transpose]


# --8<-- [start:grad_W_swapped_order]
@checked
@static_jaxtyping("out inp batch")
def affine_grad_params_swapped_order(
    grad_z: Float[Array, "out batch"],
    a_prev: Float[Array, "inp batch"],
) -> tuple[Float[Array, "out inp"], Float[Array, " out"]]:
    grad_W = a_prev @ grad_z.T  # BUG: (inp, batch) @ (batch, out) is (inp, out), the shape of W.T
    grad_b = grad_z.sum(axis=1)
    return grad_W, grad_b
    # --8<-- [end:grad_W_swapped_order]


# --8<-- [start:grad_input_no_transpose]
@checked
@static_jaxtyping("out inp batch")
def affine_grad_input_no_transpose(
    grad_z: Float[Array, "out batch"],
    W: Float[Array, "out inp"],
) -> Float[Array, "inp batch"]:
    return W @ grad_z  # BUG: (out, inp) @ (out, batch) needs inp == out, and then sums over inp
    # --8<-- [end:grad_input_no_transpose]


# --8<-- [start:grad_input_upstream_first]
@checked
@static_jaxtyping("out inp batch")
def affine_grad_input_upstream_first(
    grad_z: Float[Array, "out batch"],
    W: Float[Array, "out inp"],
) -> Float[Array, "inp batch"]:
    return grad_z.T @ W  # BUG: "upstream times local": (batch, out) @ (out, inp) is (batch, inp)
    # --8<-- [end:grad_input_upstream_first]


# --8<-- [start:grad_b_wrong_axis]
@checked
@static_jaxtyping("out inp batch")
def affine_grad_params_bias_wrong_axis(
    grad_z: Float[Array, "out batch"],
    a_prev: Float[Array, "inp batch"],
) -> tuple[Float[Array, "out inp"], Float[Array, " out"]]:
    grad_W = grad_z @ a_prev.T
    grad_b = grad_z.sum(axis=0)  # BUG: sums over out, leaving one number per example
    return grad_W, grad_b
    # --8<-- [end:grad_b_wrong_axis]


# --8<-- [start:forward_bias_wrong_axis]
@checked
@static_jaxtyping("out inp batch")
def affine_forward_bias_wrong_axis(
    W: Float[Array, "out inp"],
    b: Float[Array, " out"],
    a_prev: Float[Array, "inp batch"],
) -> Float[Array, "out batch"]:
    return W @ a_prev + b  # BUG: broadcasting aligns trailing axes: b is added along batch
    # --8<-- [end:forward_bias_wrong_axis]


# --8<-- [start:backward_bias_wrong_axis]
@checked
@static_jaxtyping("out inp batch")
def affine_backward_bias_wrong_axis(
    grad_z: Float[Array, "out batch"],
    W: Float[Array, "out inp"],
    a_prev: Float[Array, "inp batch"],
) -> tuple[Float[Array, "out inp"], Float[Array, " out"], Float[Array, "inp batch"]]:
    grad_W = grad_z @ a_prev.T
    grad_b = grad_z.sum(axis=0)  # BUG: the exact gradient of the wrong forward above
    return grad_W, grad_b, W.T @ grad_z
    # --8<-- [end:backward_bias_wrong_axis]


# --8<-- [start:sigmoid_prime_at_a]
@checked
@static_jaxtyping("features batch")
def sigmoid_backward_at_a(
    grad_a: Float[Array, "features batch"],
    z: Float[Array, "features batch"],
    a: Float[Array, "features batch"],
) -> Float[Array, "features batch"]:
    s: Array = sigmoid_forward(a)  # BUG: this is σ'(a); the chain rule needs σ'(z) = a(1 − a)
    return grad_a * s * (1.0 - s)
    # --8<-- [end:sigmoid_prime_at_a]


# --8<-- [start:softmax_backward_diagonal]
@checked
@static_jaxtyping("classes batch")
def softmax_backward_diagonal(
    grad_a: Float[Array, "classes batch"],
    z: Float[Array, "classes batch"],
    a: Float[Array, "classes batch"],
) -> Float[Array, "classes batch"]:
    return grad_a * a * (1.0 - a)  # BUG: the diagonal of the Jacobian only, as if elementwise
    # --8<-- [end:softmax_backward_diagonal]


# --8<-- [start:squared_error_without_mean]
@checked
@static_jaxtyping("out batch")
def squared_error_without_mean(
    a: Float[Array, "out batch"],
    y: Float[Array, "out batch"],
) -> tuple[float, Float[Array, "out batch"]]:
    batch = a.shape[1]
    residual = a - y
    loss = 0.5 * float(np.vdot(residual, residual)) / batch
    return loss, residual  # BUG: the loss is a mean over batch, its gradient lacks the 1/batch
    # --8<-- [end:squared_error_without_mean]


# --8<-- [start:softmax_forward_unstable]
@checked
@static_jaxtyping("classes batch")
def softmax_forward_unstable(z: Float[Array, "classes batch"]) -> Float[Array, "classes batch"]:
    e: Array = np.exp(z)  # BUG: no max subtracted: exp overflows to inf once a logit passes ~709.78
    e /= e.sum(axis=0)
    return e
    # --8<-- [end:softmax_forward_unstable]


# --8<-- [start:bce_with_epsilon]
EPSILON = 1e-8


@checked
@static_jaxtyping("out batch")
def binary_cross_entropy_with_epsilon(
    z: Float[Array, "out batch"],
    y: Float[Array, "out batch"],
) -> tuple[float, Float[Array, "out batch"]]:
    batch = z.shape[1]
    a = sigmoid_forward(z)
    # BUG: log(a + ε) dodges log(0) but caps each example's loss at −log ε ≈ 18.4
    losses = -y * np.log(a + EPSILON) - (1.0 - y) * np.log(1.0 - a + EPSILON)
    return float(losses.sum()) / batch, (a - y) / batch
    # --8<-- [end:bce_with_epsilon]


# --8<-- [start:relu_backward_float64]
@checked
@static_jaxtyping("features batch")
def relu_backward_float64(
    grad_a: Float[Array, "features batch"],
    z: Float[Array, "features batch"],
    a: Float[Array, "features batch"],
) -> Float[Array, "features batch"]:
    slope: Array = (z > 0).astype(float)  # BUG: astype(float) is float64, so is the product
    return grad_a * slope
    # --8<-- [end:relu_backward_float64]


# --8<-- [start:sigmoid_backward_in_place]
@checked
@static_jaxtyping("features batch")
def sigmoid_backward_in_place(
    grad_a: Float[Array, "features batch"],
    z: Float[Array, "features batch"],
    a: Float[Array, "features batch"],
) -> Float[Array, "features batch"]:
    a *= 1.0 - a  # BUG: saves a temporary by overwriting the cached activation with σ'(z)
    return grad_a * a
    # --8<-- [end:sigmoid_backward_in_place]


# --8<-- [start:attention_scores_queries_first]
@checked
@static_jaxtyping("heads batch head_dim query key")
def attention_scores_queries_first(
    q: Float[Array, "heads batch head_dim query"],
    k: Float[Array, "heads batch head_dim key"],
) -> Float[Array, "heads batch key query"]:
    # BUG: the batch-first Q Kᵀ transcribed as Qᵀ K: "query key", so the softmax over axis −2
    # that follows normalizes over the queries
    return (q.mT @ k) * (1.0 / math.sqrt(q.shape[-2]))
    # --8<-- [end:attention_scores_queries_first]


# --8<-- [start:attention_mask_after_softmax]
@checked
@static_jaxtyping("heads batch head_dim query key")
def attention_mask_after_softmax(
    q: Float[Array, "heads batch head_dim query"],
    k: Float[Array, "heads batch head_dim key"],
    v: Float[Array, "heads batch head_dim key"],
) -> tuple[Float[Array, "heads batch head_dim query"], Float[Array, "heads batch key query"]]:
    weights = attention_weights(attention_scores(q, k))
    key, query = weights.shape[-2:]
    future = np.arange(key)[:, np.newaxis] > np.arange(query)[np.newaxis, :]
    weights = np.where(future, 0.0, weights)  # BUG: after the softmax: columns no longer sum to 1
    return weighted_values(v, weights), weights
    # --8<-- [end:attention_mask_after_softmax]


# --8<-- [start:attention_scores_unscaled]
@checked
@static_jaxtyping("heads batch head_dim query key")
def attention_scores_unscaled(
    q: Float[Array, "heads batch head_dim query"],
    k: Float[Array, "heads batch head_dim key"],
) -> Float[Array, "heads batch key query"]:
    return k.mT @ q  # BUG: no 1/√head_dim: the scores' spread grows with head_dim
    # --8<-- [end:attention_scores_unscaled]


@checked
@static_jaxtyping("heads batch head_dim query key")
def attention_backward_unscaled(
    grad_output: Float[Array, "heads batch head_dim query"],
    q: Float[Array, "heads batch head_dim query"],
    k: Float[Array, "heads batch head_dim key"],
    v: Float[Array, "heads batch head_dim key"],
    weights: Float[Array, "heads batch key query"],
) -> tuple[
    Float[Array, "heads batch head_dim query"],
    Float[Array, "heads batch head_dim key"],
    Float[Array, "heads batch head_dim key"],
]:
    """The exact backward of attention with :func:`attention_scores_unscaled`: no 1/√D either."""
    grad_weights = v.mT @ grad_output
    grad_scores = weights * (grad_weights - (weights * grad_weights).sum(axis=-2, keepdims=True))
    return k @ grad_scores, q @ grad_scores.mT, grad_output @ weights.mT


# --8<-- [start:maxpool2d_backward_assign]
@checked
def maxpool2d_backward_assign(
    grad_a: Float[Array, "channels out_height out_width batch"], cache: MaxPool2dCache
) -> Float[Array, "channels height width batch"]:
    layer = cache.layer
    window, stride = layer.window, layer.stride
    _, out_height, out_width, _ = grad_a.shape
    grad_x = np.zeros_like(cache.x, dtype=grad_a.dtype)
    finite = math.isfinite(grad_a.sum())
    for i in range(window):
        for j in range(window):
            is_max = cache.argmax == i * window + j
            share = grad_a * is_max if finite else np.where(is_max, grad_a, 0.0)
            # BUG: = keeps only the last window's share where overlapping windows share a maximum
            grad_x[window_offset(i, j, stride, out_height, out_width)] = share
    return grad_x
    # --8<-- [end:maxpool2d_backward_assign]


# --8<-- [start:batchnorm_grad_input_no_variance_term]
@checked
@static_jaxtyping("features batch")
def batchnorm_grad_input_no_variance_term(
    grad_y: Float[Array, "features batch"],
    x_hat: Float[Array, "features batch"],
    gamma: Float[Array, " features"],
    rstd: Float[Array, " features"],
) -> Float[Array, "features batch"]:
    batch = grad_y.shape[1]
    grad_x: Array = grad_y * batch
    grad_x -= grad_y.sum(axis=1)[:, np.newaxis]
    # BUG: the path through the variance, − x̂ Σ_b ∂L/∂y x̂, is missing
    grad_x *= (gamma * rstd / batch)[:, np.newaxis]
    return grad_x
    # --8<-- [end:batchnorm_grad_input_no_variance_term]


# --8<-- [start:dropout_backward_unscaled]
@checked
@static_jaxtyping("*features batch")
def dropout_backward_unscaled(
    grad_a: Float[Array, "*features batch"], cache: DropoutCache
) -> Float[Array, "*features batch"]:
    if cache.mask is None:
        return grad_a
    return grad_a * (cache.mask > 0)  # BUG: which values were kept, without the 1 / (1 − rate)
    # --8<-- [end:dropout_backward_unscaled]


# --8<-- [start:rnn_backward_assign]
@checked
@static_jaxtyping("hidden seq batch features")
def rnn_backward_assign(
    grad_hidden_states: Float[Array, "hidden seq batch"], cache: RNNCache
) -> tuple[RNN, Float[Array, "features seq batch"], Float[Array, "hidden batch"]]:
    hidden, seq, batch = grad_hidden_states.shape
    cell = cache.layer.cell
    grad_cell = RNNCell(
        *(np.zeros_like(value) for value in (cell.W_ih, cell.b_ih, cell.W_hh, cell.b_hh))
    )
    grad_x = np.empty(cache.x.shape, dtype=np.result_type(cache.x, grad_hidden_states))
    grad_state = np.zeros((hidden, batch), dtype=grad_hidden_states.dtype)
    for t in reversed(range(seq)):
        grad_h = grad_hidden_states[:, t] + grad_state
        grad_step, grad_x[:, t], grad_state = rnn_cell_backward(grad_h, cache.steps[t])
        grad_cell = grad_step  # BUG: = keeps step 0's gradient alone; the weights need Σ over seq
    return RNN(grad_cell), grad_x, grad_state
    # --8<-- [end:rnn_backward_assign]


# --8<-- [start:rnn_backward_no_carry]
@checked
@static_jaxtyping("hidden seq batch features")
def rnn_backward_no_carry(
    grad_hidden_states: Float[Array, "hidden seq batch"], cache: RNNCache
) -> tuple[RNN, Float[Array, "features seq batch"], Float[Array, "hidden batch"]]:
    hidden, seq, batch = grad_hidden_states.shape
    cell = cache.layer.cell
    grad_cell = RNNCell(
        *(np.zeros_like(value) for value in (cell.W_ih, cell.b_ih, cell.W_hh, cell.b_hh))
    )
    grad_x = np.empty(cache.x.shape, dtype=np.result_type(cache.x, grad_hidden_states))
    grad_state = np.zeros((hidden, batch), dtype=grad_hidden_states.dtype)
    for t in reversed(range(seq)):
        grad_h = grad_hidden_states[:, t]  # BUG: the path through step t + 1, grad_state, dropped
        grad_step, grad_x[:, t], grad_state = rnn_cell_backward(grad_h, cache.steps[t])
        grad_cell = rnn_cell_add(grad_cell, grad_step)
    return RNN(grad_cell), grad_x, grad_state
    # --8<-- [end:rnn_backward_no_carry]


# --8<-- [start:lstm_cell_backward_forget_with_c_new]
@checked
@static_jaxtyping("hidden batch features")
def lstm_cell_backward_forget_with_c_new(
    grad_new_state: tuple[Float[Array, "hidden batch"], Float[Array, "hidden batch"]],
    cache: LSTMCellCache,
) -> tuple[
    LSTMCell,
    Float[Array, "features batch"],
    tuple[Float[Array, "hidden batch"], Float[Array, "hidden batch"]],
]:
    grad_h_new, grad_c_new = grad_new_state
    grad_o = grad_h_new * cache.tanh_c_new
    grad_c_total = grad_c_new + tanh_backward(
        grad_h_new * cache.o, cache.tanh_c_new, cache.tanh_c_new
    )
    c_new = cache.f * cache.c + cache.i * cache.g
    grad_f = grad_c_total * c_new  # BUG: f multiplied c_{t-1}, the previous cell state, not c_t
    grad_i = grad_c_total * cache.g
    grad_g = grad_c_total * cache.i
    grad_c = grad_c_total * cache.f
    deltas = (
        sigmoid_backward(grad_i, cache.i, cache.i),
        sigmoid_backward(grad_f, cache.f, cache.f),
        tanh_backward(grad_g, cache.g, cache.g),
        sigmoid_backward(grad_o, cache.o, cache.o),
    )
    cell = cache.cell
    gates = (cell.input_gate, cell.forget_gate, cell.cell_gate, cell.output_gate)
    grads = []
    grad_x = np.zeros_like(cache.x, dtype=np.result_type(cache.x, grad_h_new))
    grad_h = np.zeros_like(cache.h, dtype=np.result_type(cache.h, grad_h_new))
    for gate, delta in zip(gates, deltas, strict=True):
        grad_gate, grad_x_gate, grad_h_gate = gate_backward(delta, delta, gate, cache.x, cache.h)
        grads.append(grad_gate)
        grad_x += grad_x_gate
        grad_h += grad_h_gate
    return LSTMCell(*grads), grad_x, (grad_h, grad_c)
    # --8<-- [end:lstm_cell_backward_forget_with_c_new]


# --8<-- [start:gru_cell_backward_z_swapped]
@checked
@static_jaxtyping("hidden batch features")
def gru_cell_backward_z_swapped(
    grad_h_new: Float[Array, "hidden batch"], cache: GRUCellCache
) -> tuple[GRUCell, Float[Array, "features batch"], Float[Array, "hidden batch"]]:
    grad_n = grad_h_new * cache.z  # BUG: h' = (1 − z) ⊙ n + z ⊙ h: n's factor is 1 − z
    grad_z = grad_h_new * (cache.h - cache.n)
    delta_n = tanh_backward(grad_n, cache.n, cache.n)
    grad_hidden_part_n = delta_n * cache.r
    grad_r = delta_n * cache.hidden_part_n
    delta_r = sigmoid_backward(grad_r, cache.r, cache.r)
    delta_z = sigmoid_backward(grad_z, cache.z, cache.z)
    cell, x, h = cache.cell, cache.x, cache.h
    grad_reset, grad_x_r, grad_h_r = gate_backward(delta_r, delta_r, cell.reset_gate, x, h)
    grad_update, grad_x_z, grad_h_z = gate_backward(delta_z, delta_z, cell.update_gate, x, h)
    grad_new, grad_x_n, grad_h_n = gate_backward(delta_n, grad_hidden_part_n, cell.new_gate, x, h)
    grad_x = grad_x_r + grad_x_z + grad_x_n
    grad_h = grad_h_new * (1.0 - cache.z) + grad_h_r + grad_h_z + grad_h_n  # BUG: h's is z
    return GRUCell(grad_reset, grad_update, grad_new), grad_x, grad_h
    # --8<-- [end:gru_cell_backward_z_swapped]


# --8<-- [start:clipped_step_after_the_update]
def clipped_step_after_the_update(
    optimizer: Any, layers: Sequence[Any], grads: Sequence[Any], state: Any, max_norm: float
) -> tuple[Sequence[Any], Any]:
    """One step of ``train_steps(..., clip=max_norm)``: the layers and the optimizer's state."""
    layers, state = optimizer.step(layers, grads, state)
    grads, _ = clip_by_global_norm(grads, max_norm)  # BUG: the step above took g unclipped
    return layers, state
    # --8<-- [end:clipped_step_after_the_update]
