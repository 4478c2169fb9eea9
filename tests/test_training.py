"""Tests for typedbackprop.training: network.py's SGD, determinism, purity, evaluation."""

import numpy as np
import pytest
from jaxtyping import TypeCheckError

import typedbackprop as tbp
from typedbackprop.datasets import circles, iris
from typedbackprop.initialize import init_layers
from typedbackprop.optimizers import SGD
from typedbackprop.training import (
    Architecture,
    DivergedError,
    accuracy,
    evaluate,
    is_classification,
    train,
)

CIRCLES = Architecture((2, 3, 3, 1), "sigmoid", "sigmoid", "squared_error")


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def network_py_sgd(weights, biases, x, y, epochs, batch_size, eta, seed):
    """Nielsen's network.py algorithm, written independently, one example at a time.

    For each minibatch, sum the per-example gradients of C = ½‖a − y‖², then step
    ``w ← w − (eta / len(batch)) Σ ∂C/∂w``. Examples are column vectors of shape (n, 1). The
    examples are visited in the order ``rng.permutation`` gives, epoch by epoch.
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


@pytest.mark.parametrize("scheme", ["small_normal", "glorot_uniform"])
def test_circles_training_matches_network_py_to_1e_10(scheme):
    data = circles(n_samples=200, seed=3)
    assert data.x_train.shape[1] % 12 != 0  # a short last batch: η/len(batch), not η/12
    layers = init_layers(CIRCLES.sizes, np.random.default_rng(3), scheme)
    trained, _ = train(
        layers, CIRCLES, data.x_train, data.y_train,
        epochs=3, batch_size=12, learning_rate=3.0, momentum=0.0, rng=np.random.default_rng(11),
    )  # fmt: skip
    weights, biases = network_py_sgd(
        [layer.W for layer in layers], [layer.b for layer in layers],
        data.x_train, data.y_train, epochs=3, batch_size=12, eta=3.0, seed=11,
    )  # fmt: skip
    for layer, w, b in zip(trained, weights, biases, strict=True):
        np.testing.assert_allclose(layer.W, w, rtol=0, atol=1e-10)
        np.testing.assert_allclose(layer.b, b, rtol=0, atol=1e-10)
    moved = max(np.abs(new.W - old.W).max() for new, old in zip(trained, layers, strict=True))
    assert moved > 1e-3  # it did train, by far more than the tolerance


def test_training_is_bit_identical_for_a_seed_and_differs_across_seeds():
    data = iris(seed=0)
    architecture = Architecture((4, 8, 3), "relu", "softmax", "cross_entropy")

    def run(seed):
        rng = np.random.default_rng(seed)
        layers = init_layers(architecture.sizes, rng, "he_normal")
        return train(
            layers, architecture, data.x_train, data.y_train,
            epochs=5, batch_size=16, learning_rate=0.05, momentum=0.9, rng=rng,
            x_test=data.x_test, y_test=data.y_test,
        )  # fmt: skip

    (first, first_history), (second, second_history) = run(7), run(7)
    assert first_history == second_history
    for a, b in zip(first, second, strict=True):
        assert a.W.tobytes() == b.W.tobytes() and a.b.tobytes() == b.b.tobytes()
    assert not np.array_equal(run(8)[0][0].W, first[0].W)


def test_training_does_not_write_to_the_initial_layers_or_the_data():
    data = circles(n_samples=100, seed=0)
    layers = init_layers(CIRCLES.sizes, np.random.default_rng(0))
    parameters = [array for layer in layers for array in (layer.W, layer.b)]
    originals = [array.copy() for array in parameters]
    for array in [data.x_train, data.y_train, *parameters]:
        array.flags.writeable = False  # any write raises
    trained, _ = train(
        layers, CIRCLES, data.x_train, data.y_train,
        epochs=2, batch_size=7, learning_rate=1.0, momentum=0.5, rng=np.random.default_rng(0),
    )  # fmt: skip
    for original, array in zip(originals, parameters, strict=True):
        np.testing.assert_array_equal(original, array)
    assert all(new is not old for new, old in zip(trained, layers, strict=True))


def test_history_and_learning():
    data = iris(seed=1)
    architecture = Architecture((4, 16, 3), "tanh", "softmax", "cross_entropy")
    rng = np.random.default_rng(1)
    seen = []
    layers, history = train(
        init_layers(architecture.sizes, rng), architecture, data.x_train, data.y_train,
        epochs=30, batch_size=16, learning_rate=0.1, momentum=0.9, rng=rng,
        x_test=data.x_test, y_test=data.y_test,
        on_epoch=lambda epoch, layers, history: seen.append((epoch, len(history.loss))),
    )  # fmt: skip
    assert seen == [(epoch, epoch) for epoch in range(1, 31)]
    assert len(history.loss) == len(history.test_loss) == 30
    assert len(history.train_accuracy) == len(history.test_accuracy) == 30
    assert history.loss[-1] < 0.5 * history.loss[0]
    loss, test_accuracy = evaluate(layers, architecture, data.x_test, data.y_test)
    assert test_accuracy == history.test_accuracy[-1] and test_accuracy is not None
    assert test_accuracy >= 0.85 and loss == history.test_loss[-1] > 0


def test_a_regression_has_no_accuracy():
    rng = np.random.default_rng(0)
    architecture = Architecture((3, 4, 2), "sigmoid", "identity", "squared_error")
    x, y = rng.random((3, 40)), rng.normal(size=(2, 40))
    layers, history = train(
        init_layers(architecture.sizes, rng), architecture, x, y,
        epochs=3, batch_size=8, learning_rate=0.1, rng=rng, x_test=x, y_test=y,
    )  # fmt: skip
    assert len(history.loss) == len(history.test_loss) == 3
    assert history.train_accuracy == history.test_accuracy == []
    loss, no_accuracy = evaluate(layers, architecture, x, y)
    assert no_accuracy is None and loss == history.test_loss[-1]
    with pytest.raises(ValueError, match="a regression has no accuracy|not"):
        accuracy(layers, architecture, x, y)


def test_evaluate_gives_the_loss_of_loss_and_grads():
    data = iris(seed=2)
    architecture = Architecture((4, 5, 3), "relu", "softmax", "cross_entropy")
    layers = init_layers(architecture.sizes, np.random.default_rng(2), "he_normal")
    loss, _ = evaluate(layers, architecture, data.x_test, data.y_test)
    expected, _ = tbp.loss_and_grads(
        layers, data.x_test, data.y_test, "relu", "softmax", "cross_entropy"
    )
    assert loss == expected


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


def test_the_loop_steps_with_the_optimizers_sgd_and_nothing_else(monkeypatch):
    # The update rule lives in typedbackprop.optimizers only: the loop's every step is
    # SGD.step_in_place with the loop's settings (tests/test_optimizers.py holds that step to
    # SGD.step bit for bit, and to torch.optim.SGD), and the loop's weights are what those steps
    # give: a step that does nothing leaves the weights as they were.
    data = circles(n_samples=60, seed=0)
    layers = init_layers(CIRCLES.sizes, np.random.default_rng(0))
    steps = []
    monkeypatch.setattr(SGD, "step_in_place", lambda self, layers, grads, state: steps.append(self))
    trained, _ = train(
        layers, CIRCLES, data.x_train, data.y_train,
        epochs=2, batch_size=16, learning_rate=0.5, momentum=0.25, rng=np.random.default_rng(0),
    )  # fmt: skip
    batches = -(-data.x_train.shape[1] // 16)
    assert steps == [SGD(0.5, 0.25)] * (2 * batches)
    for before, after in zip(layers, trained, strict=True):
        np.testing.assert_array_equal(after.W, before.W)
        np.testing.assert_array_equal(after.b, before.b)


def test_accuracy_for_labels_one_hot_and_binary_targets():
    layers = [tbp.Dense(np.array([[1.0], [-1.0]]), np.zeros(2))]
    x = np.array([[1.0, -2.0, 3.0]])
    softmax = Architecture((1, 2), "identity", "softmax", "cross_entropy")
    assert accuracy(layers, softmax, x, np.array([0, 1, 1])) == pytest.approx(2 / 3)
    one_hot = Architecture((1, 2), "identity", "softmax", "squared_error")
    targets = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    assert accuracy(layers, one_hot, x, targets) == pytest.approx(2 / 3)
    binary = Architecture((1, 1), "identity", "sigmoid", "binary_cross_entropy")
    one = [tbp.Dense(np.array([[1.0]]), np.zeros(1))]
    assert accuracy(one, binary, x, np.array([[1.0, 0.0, 0.0]])) == pytest.approx(2 / 3)


def test_multi_label_accuracy_needs_every_output_right():
    layers = [tbp.Dense(np.eye(2), np.zeros(2))]
    architecture = Architecture((2, 2), "identity", "sigmoid", "binary_cross_entropy")
    x = np.array([[5.0, 5.0], [5.0, -5.0]])  # outputs σ(5) ≈ 1, then (1, 0)
    y = np.array([[1.0, 1.0], [1.0, 1.0]])  # the second example has one output of two wrong
    assert accuracy(layers, architecture, x, y) == 0.5  # not 3/4, the share of right outputs


def test_is_classification():
    assert is_classification(np.array([0, 2, 1]))
    assert is_classification(np.array([[0.0, 1.0, 1.0]]))
    assert not is_classification(np.array([[0.0, 0.5, 1.0]]))


def test_a_too_large_learning_rate_is_reported_not_turned_into_nan():
    data = iris(seed=0)
    architecture = Architecture((4, 32, 3), "relu", "softmax", "cross_entropy")
    layers = init_layers(architecture.sizes, np.random.default_rng(0), "he_normal")
    with pytest.raises(DivergedError, match="diverged in epoch .* smaller learning rate"):
        train(
            layers, architecture, data.x_train, data.y_train,
            epochs=20, batch_size=8, learning_rate=1e6, rng=np.random.default_rng(0),
        )  # fmt: skip
    assert np.geterr()["over"] == "warn"  # the error state was restored


@pytest.mark.parametrize(
    ("keyword", "value", "message"),
    [
        ("epochs", 0, "must be positive"),
        ("batch_size", 0, "must be positive"),
        ("learning_rate", 0.0, "must be positive"),
        ("learning_rate", float("nan"), "must be positive"),
        ("momentum", 1.0, r"momentum must lie in \[0, 1\)"),
        ("momentum", -0.1, r"momentum must lie in \[0, 1\)"),
    ],
)
def test_bad_hyperparameters(keyword, value, message):
    data = circles(n_samples=20, seed=0)
    settings = {"epochs": 1, "batch_size": 4, "learning_rate": 0.1} | {keyword: value}
    with pytest.raises(ValueError, match=message):
        train(
            init_layers(CIRCLES.sizes, np.random.default_rng(0)), CIRCLES, data.x_train,
            data.y_train, rng=np.random.default_rng(0), **settings,
        )  # fmt: skip


def test_examples_and_targets_must_agree():
    data = circles(n_samples=40, seed=0)
    layers = init_layers(CIRCLES.sizes, np.random.default_rng(0))
    settings = {"epochs": 1, "batch_size": 4, "learning_rate": 0.1, "rng": np.random.default_rng()}
    with pytest.raises(TypeCheckError):  # n_train differs between x and y
        train(layers, CIRCLES, data.x_train, data.y_train[:, :-1], **settings)
    with pytest.raises(TypeCheckError):  # batch-first x: the house layout is features first
        train(layers, CIRCLES, data.x_train.T, data.y_train, **settings)
    with pytest.raises(TypeCheckError):  # a test set with a different number of features
        train(
            layers, CIRCLES, data.x_train, data.y_train,
            x_test=data.x_test[:1], y_test=data.y_test, **settings,
        )  # fmt: skip


@pytest.mark.parametrize("sizes", [(3,), (3, 0), ()], ids=["one size", "zero width", "no sizes"])
def test_bad_architectures(sizes):
    with pytest.raises(ValueError, match="at least two layer sizes"):
        Architecture(sizes)


def test_architecture_refuses_a_loss_without_its_output():
    with pytest.raises(ValueError, match="use output_activation='softmax'"):
        Architecture((4, 3), "relu", "identity", "cross_entropy")
    assert Architecture((2, 3, 1), "tanh", "sigmoid", "binary_cross_entropy").describe() == (
        "2-3-1 tanh/sigmoid, binary_cross_entropy"
    )


def test_parameters_that_overflow_only_when_evaluated_after_the_epoch_are_reported():
    # iris's defaults at --lr 1e5: each training batch stays finite through epoch 4, and the
    # evaluation after it overflows; that is divergence too, not a warning and then NaNs.
    data = iris(seed=0)
    rng = np.random.default_rng(0)
    architecture = Architecture((4, 20, 3), "relu", "softmax", "cross_entropy")
    layers = init_layers(architecture.sizes, rng, "he_normal")
    with pytest.raises(DivergedError, match=r"diverged in epoch 4 \(overflow"):
        train(
            layers, architecture, data.x_train, data.y_train, epochs=5, batch_size=16,
            learning_rate=1e5, momentum=0.9, rng=rng, x_test=data.x_test, y_test=data.y_test,
        )  # fmt: skip
    assert np.geterr()["over"] == "warn"


def _counting_forward(monkeypatch):
    """Count the forward passes training makes, and keep the outputs of those in training mode."""
    import typedbackprop.training as training

    calls, outputs = [], []
    original = training.network_forward

    def counted(layers, x, mode=training.EVALUATION, states=None):
        output, caches = original(layers, x, mode, states)
        calls.append(x.shape[-1])
        if mode.training:
            outputs.append(output)
        return output, caches

    monkeypatch.setattr(training, "network_forward", counted)
    return calls, outputs


def test_running_metrics_are_the_batch_size_weighted_means_of_the_batches_as_trained(
    monkeypatch,
):
    data = iris(seed=3)
    n_train = data.x_train.shape[1]
    assert n_train % 16 != 0  # a short last batch, weighted by its size
    architecture = Architecture((4, 6, 3), "tanh", "softmax", "cross_entropy")
    layers = init_layers(architecture.sizes, np.random.default_rng(3))
    _, outputs = _counting_forward(monkeypatch)
    _, history = train(
        layers, architecture, data.x_train, data.y_train,
        epochs=2, batch_size=16, learning_rate=0.2, momentum=0.5, rng=np.random.default_rng(4),
    )  # fmt: skip
    order_rng = np.random.default_rng(4)  # the loop draws one permutation per epoch, nothing else
    batches = -(-n_train // 16)
    assert len(outputs) == 2 * batches
    for epoch in range(2):
        order = order_rng.permutation(n_train)
        losses, accuracies, sizes = [], [], []
        for index, start in enumerate(range(0, n_train, 16)):
            labels = data.y_train[order[start : start + 16]]
            probabilities = outputs[epoch * batches + index]  # softmax output, (classes, batch)
            picked = probabilities[labels, np.arange(len(labels))]
            losses.append(-np.mean(np.log(picked)))
            accuracies.append(np.mean(np.argmax(probabilities, axis=0) == labels))
            sizes.append(len(labels))
        assert history.loss[epoch] == pytest.approx(np.average(losses, weights=sizes), rel=1e-12)
        assert history.train_accuracy[epoch] == pytest.approx(
            np.average(accuracies, weights=sizes), rel=1e-12
        )
    assert history.train_loss == []  # the exact training loss only when asked for
    assert 0.3 < history.train_accuracy[0] < history.train_accuracy[1]  # it learns


@pytest.mark.parametrize(
    ("train_metrics", "extra"), [("running", 0), (True, 0), (False, 0), ("exact", 1)]
)
def test_only_the_exact_training_metrics_cost_a_forward_pass_over_the_training_set(
    monkeypatch, train_metrics, extra
):
    data = iris(seed=0)
    n_train, n_test = data.x_train.shape[1], data.x_test.shape[1]
    architecture = Architecture((4, 5, 3), "relu", "softmax", "cross_entropy")
    layers = init_layers(architecture.sizes, np.random.default_rng(0), "he_normal")
    calls, _ = _counting_forward(monkeypatch)
    _, history = train(
        layers, architecture, data.x_train, data.y_train,
        epochs=3, batch_size=32, learning_rate=0.05, rng=np.random.default_rng(0),
        x_test=data.x_test, y_test=data.y_test, train_metrics=train_metrics,
    )  # fmt: skip
    batches = [len(range(start, min(start + 32, n_train))) for start in range(0, n_train, 32)]
    per_epoch = [*batches, *([n_train] * extra), n_test]  # the steps, the exact pass, the test
    assert calls == per_epoch * 3
    assert len(history.train_accuracy) == (0 if train_metrics is False else 3)
    assert len(history.train_loss) == 3 * extra


def test_the_exact_training_metrics_are_the_training_sets_after_each_epoch():
    data = iris(seed=2)
    architecture = Architecture((4, 7, 3), "relu", "softmax", "cross_entropy")
    layers = init_layers(architecture.sizes, np.random.default_rng(2), "he_normal")
    snapshots = []
    _, history = train(
        layers, architecture, data.x_train, data.y_train,
        epochs=3, batch_size=20, learning_rate=0.05, momentum=0.9, rng=np.random.default_rng(2),
        train_metrics="exact", on_epoch=lambda epoch, layers, history: snapshots.append(layers),
    )  # fmt: skip
    assert len(history.train_loss) == len(history.train_accuracy) == len(snapshots) == 3
    for epoch, snapshot in enumerate(snapshots):
        loss, accuracy_after = evaluate(snapshot, architecture, data.x_train, data.y_train)
        assert history.train_loss[epoch] == loss and history.train_accuracy[epoch] == accuracy_after
    assert history.train_loss[-1] < history.loss[0]
    with pytest.raises(TypeCheckError):  # neither "running", "exact" nor a bool
        train(
            layers, architecture, data.x_train, data.y_train, epochs=1, batch_size=20,
            learning_rate=0.05, rng=np.random.default_rng(2), train_metrics="all",
        )  # fmt: skip


@pytest.mark.parametrize("layout", ["features-first", "example-major"])
def test_training_gathers_batches_without_copying_the_data_set(layout):
    import tracemalloc

    rng = np.random.default_rng(5)
    features, examples = 64, 12_000
    x_rows = rng.standard_normal((examples, features))  # one row per example, as data arrives
    x = np.ascontiguousarray(x_rows.T) if layout == "features-first" else x_rows.T
    y = rng.integers(0, 3, size=examples)
    for array in (x, x_rows, y):
        array.flags.writeable = False
    architecture = Architecture((features, 5, 3), "relu", "softmax", "cross_entropy")
    layers = init_layers(architecture.sizes, rng, "he_normal")
    train(  # once, so that the measured run's growth is the loop's own
        layers, architecture, x[:, :200], y[:200],
        epochs=1, batch_size=100, learning_rate=0.01, rng=np.random.default_rng(0),
    )  # fmt: skip
    tracemalloc.start()
    try:
        _, history = train(
            layers, architecture, x, y,
            epochs=1, batch_size=100, learning_rate=0.01, rng=np.random.default_rng(0),
        )  # fmt: skip
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert x.nbytes == 6_144_000
    assert peak < x.nbytes / 8  # a minibatch is 51,200 bytes; a copy of the set would be all of x
    assert len(history.train_accuracy) == 1


def test_the_data_sets_layout_changes_no_step():
    data = iris(seed=4)
    architecture = Architecture((4, 6, 3), "relu", "softmax", "cross_entropy")
    layers = init_layers(architecture.sizes, np.random.default_rng(4), "he_normal")
    example_major = np.ascontiguousarray(data.x_train.T).T  # the same values, examples outermost
    assert example_major.strides[1] > example_major.strides[0] and data.x_train.flags.c_contiguous
    runs = [
        train(
            layers,
            architecture,
            x,
            data.y_train,
            epochs=3,
            batch_size=16,
            learning_rate=0.1,
            momentum=0.9,
            rng=np.random.default_rng(4),
        )  # fmt: skip
        for x in (data.x_train, example_major)
    ]
    (first, first_history), (second, second_history) = runs
    np.testing.assert_allclose(first_history.loss, second_history.loss, rtol=1e-12)
    assert first_history.train_accuracy == second_history.train_accuracy
    for a, b in zip(first, second, strict=True):
        np.testing.assert_allclose(a.W, b.W, rtol=1e-12, atol=1e-14)
