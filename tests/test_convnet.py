"""The convnet of typedbackprop.models: its layers, its gradients against PyTorch, and training."""

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import assert_close

import typedbackprop as tbp
from typedbackprop.models import convnet
from typedbackprop.nn.families import parameters
from typedbackprop.training import evaluate_network, train_network


def test_the_layers_of_the_default_convnet():
    layers = convnet(np.random.default_rng(0))
    assert [type(layer).__name__ for layer in layers] == [
        "Unflatten",
        *["Conv2d", "BatchNorm", "Activation", "MaxPool2d"] * 2,
        "Flatten",
        "Dense",
        "Activation",
    ]
    assert layers[1].W.shape == (16, 1, 3, 3) and layers[5].W.shape == (32, 16, 3, 3)
    assert layers[-2].W.shape == (10, 32 * 2 * 2)  # 8×8 pooled twice is 2×2
    output, _ = tbp.network_forward(layers, np.zeros((64, 5)), tbp.Mode(training=True))
    assert output.shape == (10, 5)


def test_settings_that_cannot_work_are_refused():
    with pytest.raises(ValueError, match="the kernel must be odd"):
        convnet(np.random.default_rng(0), kernel=4)
    with pytest.raises(ValueError, match="shrink a"):
        convnet(np.random.default_rng(0), channels=(2, 2, 2, 2))


def torch_convnet_loss(layers, x, labels):
    """The same network in PyTorch (NCHW inside), float64, batch statistics; loss and leaves."""
    leaves = [
        {name: torch.tensor(value, requires_grad=True) for name, value in parameters(one).items()}
        for one in layers
    ]
    batch = x.shape[1]
    h = torch.tensor(x.T).reshape(batch, 1, 8, 8)  # our (64, batch) columns, batch first
    for layer, p in zip(layers, leaves, strict=True):
        kind = type(layer).__name__
        if kind == "Conv2d":
            h = F.conv2d(h, p["W"], p["b"], stride=layer.stride, padding=layer.padding)
        elif kind == "BatchNorm":
            h = F.batch_norm(h, None, None, p["gamma"], p["beta"], training=True, eps=layer.eps)
        elif kind == "Activation" and layer.name == "relu":
            h = F.relu(h)
        elif kind == "MaxPool2d":
            h = F.max_pool2d(h, layer.window, layer.stride)
        elif kind == "Flatten":
            h = h.reshape(batch, -1)  # (c, h, w) in C order: our feature order
        elif kind == "Dense":
            h = F.linear(h, p["W"], p["b"])
    loss = F.cross_entropy(h, torch.tensor(labels))
    loss.backward()
    return loss.item(), leaves


def test_every_gradient_of_the_convnet_matches_pytorch(rng):
    layers = convnet(rng, channels=(4, 6))
    x, labels = rng.standard_normal((64, 7)), rng.integers(0, 10, 7)
    loss, grads = tbp.network_loss_and_grads(layers, x, labels, "cross_entropy")
    expected, leaves = torch_convnet_loss(layers, x, labels)
    assert loss == pytest.approx(expected, rel=1e-12)
    checked = 0
    for layer, grad, layer_leaves in zip(layers, grads, leaves, strict=True):
        for name, leaf in layer_leaves.items():
            if isinstance(layer, tbp.nn.Conv2d) and name == "b":
                # Batch norm subtracts each channel's mean, so the bias of the convolution
                # before it has no effect and its gradient is 0 in exact arithmetic; both
                # sides give rounding noise of order 1e-17 (sums of ±1e-2 terms).
                assert_close(getattr(grad, name), leaf.grad, atol=1e-15)
                np.testing.assert_allclose(getattr(grad, name), 0.0, atol=1e-15)
            else:
                assert_close(getattr(grad, name), leaf.grad)
            checked += 1
    assert checked == 2 * 4 + 2  # W, b, gamma, beta per stage; the dense W and b


def test_every_parameter_of_a_small_convnet_passes_the_gradient_check(rng):
    layers = convnet(rng, channels=(2, 3))
    x, labels = rng.standard_normal((64, 6)), rng.integers(0, 10, 6)
    for index, layer in enumerate(layers):
        for name, value in parameters(layer).items():

            def loss(value, index=index, name=name):
                changed = list(layers)
                changed[index] = _replace(layers[index], name, value)
                return tbp.network_loss_and_grads(changed, x, labels, "cross_entropy")[0]

            def backward(_, value, index=index, name=name):
                changed = list(layers)
                changed[index] = _replace(layers[index], name, value)
                grads = tbp.network_loss_and_grads(changed, x, labels, "cross_entropy")[1]
                return getattr(grads[index], name)

            report = tbp.gradcheck(loss, backward, [value], names=[f"{name}{index}"])
            assert report.passed, report


def _replace(layer, name, value):
    return dataclasses.replace(layer, **{name: value})


def test_training_updates_the_running_statistics_and_evaluation_uses_them():
    data = tbp.load_dataset("digits", seed=0)
    rng = np.random.default_rng(1)
    layers = convnet(rng, channels=(4, 8))
    states = tbp.initial_states(layers)
    trained, history = train_network(
        layers,
        "cross_entropy",
        data.x_train,
        data.y_train,
        epochs=2,
        batch_size=32,
        learning_rate=0.05,
        momentum=0.9,
        rng=rng,
        x_test=data.x_test,
        y_test=data.y_test,
        train_metrics=False,
        states=states,
    )
    assert history.test_accuracy[-1] > 0.8  # two epochs of a small network; chance is 0.1
    assert not np.array_equal(states[2].mean, np.zeros(4))  # the first BatchNorm's state
    _, accuracy = evaluate_network(trained, "cross_entropy", data.x_test, data.y_test, states)
    assert accuracy == history.test_accuracy[-1]
    with pytest.raises(ValueError, match="BatchNorm in evaluation mode"):
        evaluate_network(trained, "cross_entropy", data.x_test, data.y_test)


def test_explain_shows_every_equation_of_the_convnet_with_the_columns_shapes(rng):
    from typedbackprop.explain import explain_network

    lines = explain_network(
        convnet(rng), rng.standard_normal((64, 5)), rng.integers(0, 10, 5), "cross_entropy"
    )
    text = "\n".join(lines)
    for fragment in [
        "x0 (1, 8, 8, 5) = a0 (64, 5).reshape(1, 8, 8, 5)",
        "columns1 (9, 320) = im2col(x0 (1, 8, 8, 5), 3x3, stride 1, padding 1)",
        "z1_col (16, 320) = W1_col (16, 9) @ columns1 (9, 320) + b1[:, None] (16, 1)",
        "columns3 (144, 80) = im2col(p2 (16, 4, 4, 5), 3x3, stride 1, padding 1)",
        "grad_W3 (32, 16, 3, 3) = (delta3_col (32, 80) @ columns3.T (80, 144))",
        "grad_columns3 (144, 80) = W3_col.T (144, 32) @ delta3_col (32, 80)",
        "grad_p2 (16, 4, 4, 5) = col2im(grad_columns3 (144, 80))",
        "delta1 (16, 8, 8, 5) = gamma2 / sqrt(var2 + eps)",
        "grad_W1 (16, 1, 3, 3) = (delta1_col (16, 320) @ columns1.T (320, 9))",
        "(no grad_x0: nothing needs the gradient of the input",
    ]:
        assert fragment in text, fragment
    assert "grad_columns1" not in text  # the first convolution's input gradient is skipped
