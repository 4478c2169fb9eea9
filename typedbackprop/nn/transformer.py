"""The pre-norm transformer block: attention and a feed-forward network, each on a residual path.

``h = x + attention(layernorm(x))``, then ``y = h + feedforward(layernorm(h))``, on sequences
laid out ``"features seq batch"``. The block is made of layers: its parameter record holds
its parts' records, its cache holds their caches, and its forward and backward call their
forward and backward. The feed-forward network is the dense layer and an activation applied to
every token on its own: its functions see every token as a column, ``(features, seq·batch)``.
"""

from dataclasses import dataclass

from jaxtyping import Float

from typedbackprop.checking import Array, checked, checked_record, runtime_shapes_only
from typedbackprop.nn.activations import ACTIVATIONS, ActivationKind
from typedbackprop.nn.affine import affine_forward, affine_grad_input, affine_grad_params
from typedbackprop.nn.attention import (
    Attention,
    AttentionCache,
    attention_backward,
    attention_forward,
)
from typedbackprop.nn.layer import Layer
from typedbackprop.nn.layernorm import (
    LayerNorm,
    LayerNormCache,
    layernorm_backward,
    layernorm_forward,
)

__all__ = [
    "FeedForward",
    "FeedForwardCache",
    "feedforward_forward",
    "feedforward_backward",
    "TransformerBlock",
    "TransformerBlockCache",
    "transformer_block_forward",
    "transformer_block_backward",
]


# --- the feed-forward network, applied to every token ------------------------------------------


@checked_record()
@dataclass(frozen=True, slots=True)
class FeedForward(Layer):
    """A two-layer network applied to each token (or its gradients), and its activation.

    Parameters
    ----------
    W_up, b_up
        The first layer, ``features → hidden``, up to the wider hidden layer.
    W_down, b_down
        The second layer, ``hidden → features``, back down.
    activation
        The hidden layer's activation (a key of
        :data:`~typedbackprop.nn.activations.ACTIVATIONS`).
    slope
        Leaky ReLU's slope for negative pre-activations; the other activations ignore it.
    """

    W_up: Float[Array, "hidden features"]
    b_up: Float[Array, " hidden"]
    W_down: Float[Array, "features hidden"]
    b_down: Float[Array, " features"]
    activation: ActivationKind = "gelu"
    slope: float = 0.01


@dataclass(frozen=True, slots=True)
class FeedForwardCache:
    """What :func:`feedforward_forward` saves for :func:`feedforward_backward`."""

    layer: FeedForward
    """The parameters and the activation, with its slope."""
    x: Float[Array, "features seq batch"]
    """The input (the first layer's weight gradient needs it)."""
    z: Float[Array, "hidden seq batch"]
    """The hidden pre-activations."""
    a: Float[Array, "hidden seq batch"]
    """The hidden activations."""


@checked
@runtime_shapes_only(
    "the activation comes from the ACTIVATIONS table and every token is a column of a reshape to "
    "a product of dimensions (features, seq·batch), neither of which has a shape for Pyrefly"
)
def feedforward_forward(
    layer: FeedForward, x: Float[Array, "features seq batch"]
) -> tuple[Float[Array, "features seq batch"], FeedForwardCache]:
    """``y = W_down f(W_up x + b_up) + b_down`` at every token.

    Parameters
    ----------
    layer
        The two layers and the activation, with its slope.
    x
        Features, one column per token.

    Returns
    -------
    y, cache
        The output features, and the :class:`FeedForwardCache`.

    Notes
    -----
    ``z_{hsb} = Σ_f W_up_{hf} x_{fsb} + b_up_h``, ``a = f(z)``,
    ``y_{fsb} = Σ_h W_down_{fh} a_{hsb} + b_down_f``: :func:`affine_forward` with every
    token a column, ``x`` reshaped to ``(features, seq·batch)``.
    """
    features, seq, batch = x.shape
    hidden = layer.W_up.shape[0]
    columns = x.reshape(features, seq * batch)  # every token a column
    z = affine_forward(layer.W_up, layer.b_up, columns)
    a = ACTIVATIONS[layer.activation].forward(z, layer.slope)
    y = affine_forward(layer.W_down, layer.b_down, a)
    shape = (hidden, seq, batch)
    return y.reshape(features, seq, batch), FeedForwardCache(
        layer, x, z.reshape(shape), a.reshape(shape)
    )


@checked
@runtime_shapes_only(
    "the activation comes from the ACTIVATIONS table and every token is a column of a reshape to "
    "a product of dimensions (features, seq·batch), neither of which has a shape for Pyrefly"
)
def feedforward_backward(
    grad_y: Float[Array, "features seq batch"], cache: FeedForwardCache
) -> tuple[FeedForward, Float[Array, "features seq batch"]]:
    """Gradients of the feed-forward network: ``(FeedForward(grad_W_up, ...), grad_x)``.

    Parameters
    ----------
    grad_y
        ``∂L/∂y``, the upstream gradient.
    cache
        What :func:`feedforward_forward` saved.

    Returns
    -------
    grads, grad_x
        The four parameter gradients in a :class:`FeedForward`, and ``∂L/∂x``.

    Notes
    -----
    The affine layer's backward twice (``δ a_prevᵀ``, ``δ 1``, ``Wᵀ δ``) with the activation's
    in between (``∂L/∂z = ∂L/∂a ⊙ f'(z)``), on ``(·, seq·batch)`` columns.
    """
    layer = cache.layer
    features, seq, batch = grad_y.shape
    hidden = layer.W_up.shape[0]
    tokens = seq * batch
    delta = grad_y.reshape(features, tokens)
    z, a = cache.z.reshape(hidden, tokens), cache.a.reshape(hidden, tokens)
    grad_W_down, grad_b_down = affine_grad_params(delta, a)
    grad_a = affine_grad_input(delta, layer.W_down)
    grad_z = ACTIVATIONS[layer.activation].backward(grad_a, z, a, layer.slope)
    grad_W_up, grad_b_up = affine_grad_params(grad_z, cache.x.reshape(features, tokens))
    grad_x = affine_grad_input(grad_z, layer.W_up)
    grads = FeedForward(
        grad_W_up, grad_b_up, grad_W_down, grad_b_down, layer.activation, layer.slope
    )
    return grads, grad_x.reshape(features, seq, batch)


# --- the block ---------------------------------------------------------------------------------


@checked_record()
@dataclass(frozen=True, slots=True)
class TransformerBlock(Layer):
    """A pre-norm transformer block: the records of the four layers it is made of.

    The same record holds the block's gradients, each part's in its part's record. Its settings
    are its parts' own: whether attention is causal is ``attention.causal``, the activation and
    its slope are ``feedforward``'s, and each layer norm has its ``eps``.

    Parameters
    ----------
    attention_norm
        The layer norm before attention.
    attention
        Multi-head self-attention (see :class:`~typedbackprop.nn.attention.Attention`).
    feedforward_norm
        The layer norm before the feed-forward network.
    feedforward
        The feed-forward network (see :class:`FeedForward`).
    """

    attention_norm: LayerNorm
    attention: Attention
    feedforward_norm: LayerNorm
    feedforward: FeedForward


@dataclass(frozen=True, slots=True)
class TransformerBlockCache:
    """What :func:`transformer_block_forward` saves: each sub-layer's own cache."""

    attention_norm: LayerNormCache
    attention: AttentionCache
    feedforward_norm: LayerNormCache
    feedforward: FeedForwardCache


@checked
@runtime_shapes_only(
    "the sub-layers' forward passes take records and return no shape for Pyrefly (the "
    "projections, the activation table); the block's own arithmetic is the residual sums"
)
def transformer_block_forward(
    block: TransformerBlock, x: Float[Array, "features seq batch"]
) -> tuple[Float[Array, "features seq batch"], TransformerBlockCache]:
    """``h = x + attention(layernorm(x))``, then ``y = h + feedforward(layernorm(h))``.

    Parameters
    ----------
    block
        The four sub-layers.
    x
        Features, one column per token.

    Returns
    -------
    y, cache
        The block's output, and the :class:`TransformerBlockCache` of its sub-layers' caches.

    Notes
    -----
    Each residual connection adds a sub-layer's output to its input: the sub-layers learn a
    change to the token's features, and the gradient reaches ``x`` along the identity too.
    """
    normed, attention_norm = layernorm_forward(block.attention_norm, x)
    attended, attention = attention_forward(block.attention, normed)
    h = x + attended
    normed, feedforward_norm = layernorm_forward(block.feedforward_norm, h)
    fed, feedforward = feedforward_forward(block.feedforward, normed)
    cache = TransformerBlockCache(attention_norm, attention, feedforward_norm, feedforward)
    return h + fed, cache


@checked
@runtime_shapes_only(
    "the sub-layers' backward passes take caches and return no shape for Pyrefly (the "
    "projections, the activation table); the block's own arithmetic is the residual sums"
)
def transformer_block_backward(
    grad_y: Float[Array, "features seq batch"], cache: TransformerBlockCache
) -> tuple[TransformerBlock, Float[Array, "features seq batch"]]:
    """Gradients of the block: ``(TransformerBlock(...gradients...), grad_x)``.

    Parameters
    ----------
    grad_y
        ``∂L/∂y``, the upstream gradient.
    cache
        What :func:`transformer_block_forward` saved.

    Returns
    -------
    grads, grad_x
        The sub-layers' gradients in a :class:`TransformerBlock`, and ``∂L/∂x``.

    Notes
    -----
    ``y = h + F(h)`` gives ``∂L/∂h = ∂L/∂y + (∂F/∂h)ᵀ ∂L/∂y``: the identity path and the
    sub-layer's backward, summed. Likewise ``h = x + A(x)`` gives ``∂L/∂x``.
    """
    feedforward, grad_normed = feedforward_backward(grad_y, cache.feedforward)
    feedforward_norm, grad_h = layernorm_backward(grad_normed, cache.feedforward_norm)
    grad_h += grad_y  # the residual path
    attention, grad_normed = attention_backward(grad_h, cache.attention)
    attention_norm, grad_x = layernorm_backward(grad_normed, cache.attention_norm)
    grad_x += grad_h  # the residual path
    return TransformerBlock(attention_norm, attention, feedforward_norm, feedforward), grad_x
