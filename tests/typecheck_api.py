"""A user's view of the public API; it exists to be type-checked by ``mypy --strict``.

``tests/test_static.py`` runs mypy on this file, so a change that breaks the types a user sees
(return types, ``Dense`` fields, the name literals) fails the suite. It also runs as a test.
"""

import numpy as np
from jaxtyping import Float

import typedbackprop as tbp
from typedbackprop import Array, checked


@checked
def my_scale_forward(
    z: Float[Array, "features batch"], factor: float
) -> Float[Array, "features batch"]:
    """A user's own layer, annotated and checked the same way as typedbackprop's."""
    return factor * z


def train_step(
    layers: list[tbp.Dense], x: Array, y: Array, learning_rate: float
) -> list[tbp.Dense]:
    loss, grads = tbp.loss_and_grads(layers, x, y, activation="tanh", loss="squared_error")
    assert loss >= 0.0
    return [
        tbp.Dense(layer.W - learning_rate * grad.W, layer.b - learning_rate * grad.b)
        for layer, grad in zip(layers, grads, strict=True)
    ]


def test_user_code() -> None:
    rng = np.random.default_rng(0)
    layers = [
        tbp.Dense(rng.normal(size=(4, 3)), np.zeros(4)),
        tbp.Dense(rng.normal(size=(2, 4)), np.zeros(2)),
    ]
    x, y = rng.normal(size=(3, 5)), rng.normal(size=(2, 5))
    updated = train_step(layers, x, y, 0.1)
    prediction: Array = tbp.predict(updated, x, "tanh", "identity")
    assert prediction.shape == (2, 5)
    assert my_scale_forward(x, 2.0).shape == x.shape
    grad_W, grad_b, grad_a_prev = tbp.nn.affine_backward(np.ones((4, 5)), layers[0].W, x)
    report: tbp.GradcheckReport = tbp.gradcheck(
        lambda z: my_scale_forward(z, 2.0), lambda grad, z: 2.0 * grad, [x]
    )
    assert (
        report.passed
        and grad_W.shape == (4, 3)
        and grad_b.shape == (4,)
        and grad_a_prev.shape == x.shape
    )


def mixed_network_step(rng: np.random.Generator) -> float:
    """A network of several families, as a list display: mypy types it ``list[Layer]``."""
    layers = [
        tbp.Dense(rng.normal(size=(4, 3)), np.zeros(4)),
        tbp.Activation("leaky_relu", slope=0.2),
        tbp.Dense(rng.normal(size=(2, 4)), np.zeros(2)),
        tbp.Activation("softmax"),
    ]
    x, labels = rng.normal(size=(3, 5)), np.array([0, 1, 1, 0, 1])
    loss, grads = tbp.network_loss_and_grads(layers, x, labels, "cross_entropy")
    first = grads[0]
    assert isinstance(first, tbp.Dense) and first.W.shape == (4, 3)
    assert grads[1] is None  # an activation has no parameters
    return loss


def test_a_mixed_network() -> None:
    assert mixed_network_step(np.random.default_rng(0)) > 0.0
