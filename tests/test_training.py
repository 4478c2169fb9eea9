"""Tests for typedbackprop.training and typedbackprop.initialize."""

import numpy as np
import pytest

import typedbackprop as tbp
from typedbackprop.datasets import circles, iris
from typedbackprop.initialize import init_layers
from typedbackprop.training import Architecture, accuracy, evaluate, sgd_step, train

CIRCLES = Architecture((2, 3, 3, 1), "sigmoid", "sigmoid", "squared_error")


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def network_py_sgd(weights, biases, x, y, epochs, batch_size, eta, seed):
    """Nielsen's network.py algorithm, written independently, one example at a time.

    For each minibatch, sum the per-example gradients of C = ½‖a − y‖², then step
    ``w ← w − (eta / len(batch)) Σ ∂C/∂w``. Examples are column vectors of shape (n, 1).
    """
    weights = [w.copy() for w in weights]
    biases = [b.reshape(-1, 1).copy() for b in biases]
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(x.shape[1])
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            nabla_w = [np.zeros_like(w) for w in weights]
            nabla_b = [np.zeros_like(b) for b in biases]
            for column in batch:
                activation = x[:, [column]]
                activations, zs = [activation], []
                for w, b in zip(weights, biases, strict=True):
                    z = w @ activation + b
                    zs.append(z)
                    activation = sigmoid(z)
                    activations.append(activation)
                delta = (activations[-1] - y[:, [column]]) * sigmoid(zs[-1]) * (1 - sigmoid(zs[-1]))
                nabla_b[-1] += delta
                nabla_w[-1] += delta @ activations[-2].T
                for layer in range(2, len(weights) + 1):
                    sp = sigmoid(zs[-layer]) * (1 - sigmoid(zs[-layer]))
                    delta = (weights[-layer + 1].T @ delta) * sp
                    nabla_b[-layer] += delta
                    nabla_w[-layer] += delta @ activations[-layer - 1].T
            weights = [w - eta / len(batch) * nw for w, nw in zip(weights, nabla_w, strict=True)]
            biases = [b - eta / len(batch) * nb for b, nb in zip(biases, nabla_b, strict=True)]
    return weights, [b.ravel() for b in biases]


def test_circles_training_matches_network_py_to_1e_10():
    data = circles(n_samples=200, seed=3)
    layers = init_layers(CIRCLES.sizes, np.random.default_rng(3))
    trained, _ = train(
        layers, CIRCLES, data.x_train, data.y_train,
        epochs=3, batch_size=10, learning_rate=3.0, momentum=0.0, rng=np.random.default_rng(11),
    )  # fmt: skip
    weights, biases = network_py_sgd(
        [layer.W for layer in layers], [layer.b for layer in layers],
        data.x_train, data.y_train, epochs=3, batch_size=10, eta=3.0, seed=11,
    )  # fmt: skip
    for layer, w, b in zip(trained, weights, biases, strict=True):
        assert np.max(np.abs(layer.W - w)) <= 1e-10 * np.max(np.abs(w))
        assert np.max(np.abs(layer.b - b)) <= 1e-10 * np.max(np.abs(b))
    assert not np.array_equal(trained[0].W, layers[0].W)  # it did train


def test_training_is_bit_identical_for_a_seed_and_differs_across_seeds():
    data = iris(seed=0)
    architecture = Architecture((4, 8, 3), "relu", "softmax", "cross_entropy")

    def run(seed):
        rng = np.random.default_rng(seed)
        layers = init_layers(architecture.sizes, rng, "he_normal")
        return train(
            layers, architecture, data.x_train, data.y_train,
            epochs=5, batch_size=16, learning_rate=0.05, momentum=0.9, rng=rng,
        )  # fmt: skip

    (first, first_history), (second, second_history) = run(7), run(7)
    assert first_history.loss == second_history.loss
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a.W, b.W)
        np.testing.assert_array_equal(a.b, b.b)
    assert not np.array_equal(run(8)[0][0].W, first[0].W)


def test_training_does_not_write_to_the_initial_layers_or_the_data():
    data = circles(n_samples=100, seed=0)
    layers = init_layers(CIRCLES.sizes, np.random.default_rng(0))
    for array in [data.x_train, data.y_train] + [a for layer in layers for a in (layer.W, layer.b)]:
        array.flags.writeable = False
    train(
        layers, CIRCLES, data.x_train, data.y_train,
        epochs=2, batch_size=7, learning_rate=1.0, momentum=0.5, rng=np.random.default_rng(0),
    )  # fmt: skip


def test_history_and_learning():
    data = iris(seed=1)
    architecture = Architecture((4, 16, 3), "tanh", "softmax", "cross_entropy")
    rng = np.random.default_rng(1)
    layers, history = train(
        init_layers(architecture.sizes, rng), architecture, data.x_train, data.y_train,
        epochs=30, batch_size=16, learning_rate=0.1, momentum=0.9, rng=rng,
        x_test=data.x_test, y_test=data.y_test,
    )  # fmt: skip
    assert len(history.loss) == len(history.train_accuracy) == len(history.test_accuracy) == 30
    assert history.loss[-1] < 0.5 * history.loss[0]
    loss, test_accuracy = evaluate(layers, architecture, data.x_test, data.y_test)
    assert test_accuracy == history.test_accuracy[-1] >= 0.85 and loss > 0


def test_epoch_loss_is_the_size_weighted_mean_of_the_batch_losses():
    # One epoch with learning rate ~0 leaves the layers fixed: the epoch loss is the full loss.
    data = circles(n_samples=50, seed=0)
    layers = init_layers(CIRCLES.sizes, np.random.default_rng(0))
    _, history = train(
        layers, CIRCLES, data.x_train, data.y_train,
        epochs=1, batch_size=7, learning_rate=1e-300, rng=np.random.default_rng(0),
    )  # fmt: skip
    full, _ = tbp.loss_and_grads(layers, data.x_train, data.y_train, "sigmoid", "sigmoid")
    assert history.loss[0] == pytest.approx(full, rel=1e-12)


def test_sgd_step_with_momentum_by_hand():
    layer = tbp.Dense(np.array([[1.0]]), np.array([0.0]))
    grad = tbp.Dense(np.array([[2.0]]), np.array([-1.0]))
    velocity = tbp.Dense(np.array([[0.5]]), np.array([0.0]))
    (new,), (new_velocity,) = sgd_step([layer], [grad], [velocity], learning_rate=0.1, momentum=0.9)
    # v = 0.9·0.5 − 0.1·2 = 0.25, W = 1 + 0.25; v_b = 0.1, b = 0.1
    np.testing.assert_allclose(new_velocity.W, [[0.25]])
    np.testing.assert_allclose(new.W, [[1.25]])
    np.testing.assert_allclose(new.b, [0.1])


def test_accuracy_for_labels_and_binary_targets():
    layers = [tbp.Dense(np.array([[1.0], [-1.0]]), np.zeros(2))]
    x = np.array([[1.0, -2.0, 3.0]])
    softmax = Architecture((1, 2), "identity", "softmax", "cross_entropy")
    assert accuracy(layers, softmax, x, np.array([0, 1, 1])) == pytest.approx(2 / 3)
    binary = Architecture((1, 1), "identity", "sigmoid", "binary_cross_entropy")
    one = [tbp.Dense(np.array([[1.0]]), np.zeros(1))]
    assert accuracy(one, binary, x, np.array([[1.0, 0.0, 0.0]])) == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    ("keyword", "value"), [("epochs", 0), ("batch_size", 0), ("learning_rate", 0.0)]
)
def test_bad_hyperparameters(keyword, value):
    data = circles(n_samples=20, seed=0)
    settings = {"epochs": 1, "batch_size": 4, "learning_rate": 0.1} | {keyword: value}
    with pytest.raises(ValueError, match="must be positive"):
        train(
            init_layers(CIRCLES.sizes, np.random.default_rng(0)), CIRCLES, data.x_train,
            data.y_train, rng=np.random.default_rng(0), **settings,
        )  # fmt: skip


# --- initialisation ------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["small_normal", "glorot_uniform", "he_normal"])
def test_initialisations_have_the_right_shapes_and_scales(scheme):
    layers = init_layers([300, 200, 10], np.random.default_rng(0), scheme)
    assert [layer.W.shape for layer in layers] == [(200, 300), (10, 200)]
    assert all(np.all(layer.b == 0) for layer in layers)
    W = layers[0].W
    expected_std = {
        "small_normal": 0.01,
        "glorot_uniform": np.sqrt(6 / 500) / np.sqrt(3),  # U(−r, r) has std r/√3
        "he_normal": np.sqrt(2 / 300),
    }[scheme]
    assert W.std() == pytest.approx(expected_std, rel=0.02)
    if scheme == "glorot_uniform":
        assert np.abs(W).max() <= np.sqrt(6 / 500)


def test_initialisation_is_seeded_and_typed():
    first = init_layers([3, 4], np.random.default_rng(5), dtype=np.float32)
    second = init_layers([3, 4], np.random.default_rng(5), dtype=np.float32)
    np.testing.assert_array_equal(first[0].W, second[0].W)
    assert first[0].W.dtype == first[0].b.dtype == np.float32


@pytest.mark.parametrize(
    ("sizes", "scheme"), [([3], "he_normal"), ([3, -1], "he_normal"), ([3, 2], "xavier")]
)
def test_bad_initialisation_arguments(sizes, scheme):
    with pytest.raises(ValueError):
        init_layers(sizes, np.random.default_rng(0), scheme)
