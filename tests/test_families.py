"""Cross-cutting tests of every layer family, driven by the one table in ``tests/families.py``.

Per family: the full Jacobian against central differences (tbp.gradcheck); PyTorch's gradients
for a random upstream gradient at relative error ≤ 1e-10; no input or parameter modified; float32
in, float32 out; an upstream gradient of the wrong shape refused naming the dimension; and a
backward that returns a transposed gradient refused by the contract's scoped check.
"""

import dataclasses
import inspect
from typing import Any

import numpy as np
import pytest
import torch
from families import CASES, FamilyCase
from helpers import assert_close
from jaxtyping import TypeCheckError

import typedbackprop as tbp
from typedbackprop.checking import checked
from typedbackprop.nn.tree import leaves, replace_leaves

IDS = [case.name for case in CASES]


def parameters(layer: Any) -> dict[str, np.ndarray]:
    """The layer's parameter arrays by dotted path (``attention.W_query`` in a block's
    attention), none for a family without parameters."""
    return leaves(layer)


def run(case: FamilyCase, layer: Any, x: np.ndarray, grad_output: np.ndarray) -> Any:
    family = tbp.nn.FAMILIES[type(layer)]
    _, cache = family.run(layer, x, case.mode)
    return family.backward(grad_output, cache)


def takes_ids(x: np.ndarray) -> bool:
    """Whether the family's input is integer ids (an embedding): no gradient, no differences."""
    return x.dtype.kind in "iu"


def split(layer: Any, result: Any) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``(gradients of the parameters by name, grad_x)`` from a backward's result."""
    if tbp.nn.FAMILIES[type(layer)].has_parameters:
        grad_layer, grad_x = result
        assert type(grad_layer) is type(layer), "the gradient record is the parameter record"
        return parameters(grad_layer), grad_x
    return {}, result


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradients_match_central_differences(case: FamilyCase, rng: np.random.Generator):
    layer, x = case.build(rng, np.float64)
    names = list(parameters(layer))
    family = tbp.nn.FAMILIES[type(layer)]

    def rebuilt(values: tuple[np.ndarray, ...]) -> Any:
        return replace_leaves(layer, dict(zip(names, values, strict=True)))

    def forward(x: np.ndarray, *values: np.ndarray) -> np.ndarray:
        return family.run(rebuilt(values), x, case.mode)[0]

    def backward(grad_output: np.ndarray, x: np.ndarray, *values: np.ndarray) -> tuple[Any, ...]:
        grads, grad_x = split(layer, run(case, rebuilt(values), x, grad_output))
        return (grad_x, *[grads[name] for name in names])

    if takes_ids(x):  # ids are not differentiable: only the parameters are checked
        report = tbp.gradcheck(
            lambda *values: forward(x, *values),
            lambda grad_output, *values: backward(grad_output, x, *values)[1:],
            list(parameters(layer).values()),
            names=names,
        )
        assert report.passed, report
        return
    report = tbp.gradcheck(forward, backward, [x, *parameters(layer).values()], names=["x", *names])
    assert report.passed, report


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradients_match_pytorch(case: FamilyCase, rng: np.random.Generator):
    layer, x = case.build(rng, np.float64)
    family = tbp.nn.FAMILIES[type(layer)]
    output, _ = family.run(layer, x, case.mode)
    grad_output = rng.standard_normal(output.shape)  # random: all ones hides zero-sum bugs
    grads, grad_x = split(layer, run(case, layer, x, grad_output))

    leaves = {
        name: torch.tensor(value, requires_grad=True) for name, value in parameters(layer).items()
    }
    x_leaf = torch.tensor(x, requires_grad=not takes_ids(x))
    expected = case.torch_forward(leaves, x_leaf, layer)
    expected.backward(torch.tensor(grad_output))
    assert_close(output, expected)
    if takes_ids(x):
        assert grad_x is None
    else:
        assert x_leaf.grad is not None
        assert_close(grad_x, x_leaf.grad)
    assert set(grads) == set(leaves)
    for name, leaf in leaves.items():
        assert leaf.grad is not None
        assert_close(grads[name], leaf.grad)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_and_backward_modify_nothing(case: FamilyCase, rng: np.random.Generator):
    layer, x = case.build(rng, np.float64)
    arrays = [x, *parameters(layer).values()]
    before = [array.copy() for array in arrays]
    for array in arrays:
        array.flags.writeable = False  # an in-place write raises at once
    output, _ = tbp.nn.FAMILIES[type(layer)].run(layer, x, case.mode)
    run(case, layer, x, rng.standard_normal(output.shape))
    for array, original in zip(arrays, before, strict=True):
        np.testing.assert_array_equal(array, original)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_float32_stays_float32(case: FamilyCase, rng: np.random.Generator):
    layer, x = case.build(rng, np.float32)
    output, _ = tbp.nn.FAMILIES[type(layer)].run(layer, x, case.mode)
    grad_output = rng.standard_normal(output.shape).astype(np.float32)
    grads, grad_x = split(layer, run(case, layer, x, grad_output))
    assert output.dtype == np.float32
    assert grad_x is None if takes_ids(x) else grad_x.dtype == np.float32
    assert all(grad.dtype == np.float32 for grad in grads.values())


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_wrongly_shaped_upstream_gradient_is_refused(case: FamilyCase, rng: np.random.Generator):
    layer, x = case.build(rng, np.float64)
    family = tbp.nn.FAMILIES[type(layer)]
    output, cache = family.run(layer, x, case.mode)
    wrong = rng.standard_normal((*output.shape[:-1], output.shape[-1] + 1))  # one more example
    with pytest.raises(TypeCheckError, match="batch"):
        family.backward(wrong, cache)


CORRUPTIONS = {
    "transposed": lambda grad: grad.T,
    "one row short": lambda grad: grad[:-1],  # only the cache knows how many rows x had
}


@pytest.mark.parametrize("corruption", CORRUPTIONS)
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_backward_returning_a_misshapen_gradient_is_refused(
    case: FamilyCase, corruption: str, rng: np.random.Generator
):
    """The cache carries the sizes forward saw: a ``grad_x`` shaped otherwise cannot pass."""
    layer, x = case.build(rng, np.float64)
    if takes_ids(x):
        pytest.skip("integer ids have no gradient to misshape")
    family = tbp.nn.FAMILIES[type(layer)]
    output, cache = family.run(layer, x, case.mode)
    correct = family.backward.__wrapped__  # type: ignore[attr-defined]
    corrupt = CORRUPTIONS[corruption]

    def misshapen(grad_output: np.ndarray, cache: Any) -> Any:
        result = correct(grad_output, cache)
        if family.has_parameters:
            return result[0], corrupt(result[1])
        return corrupt(result)

    # The same annotations as the real backward (functools.wraps would hand beartype the real
    # function's parameter names, which differ from these, and it would check nothing).
    hints = dict(correct.__annotations__)
    first = next(iter(inspect.signature(correct).parameters))
    misshapen.__annotations__ = {
        "grad_output": hints[first],
        "cache": hints["cache"],
        "return": hints["return"],
    }
    with pytest.raises(TypeCheckError):
        checked(misshapen)(rng.standard_normal(output.shape), cache)


def test_every_family_has_a_row_and_every_row_a_family():
    # A new family cannot be forgotten: adding it to FAMILIES fails this test until
    # tests/families.py has a row for it, and with it every test driven by that table
    # (here, check_layer's in test_check_layer.py, hostile input in test_hostile.py).
    tested = {type(case.build(np.random.default_rng(0), np.float64)[0]) for case in CASES}
    assert set(tbp.nn.FAMILIES) <= tested, (
        f"families without a row: {set(tbp.nn.FAMILIES) - tested}"
    )
    assert tested <= set(tbp.nn.FAMILIES), f"rows of no family: {tested - set(tbp.nn.FAMILIES)}"
    assert len(IDS) == len(set(IDS)), "two rows with one name"


def test_every_family_has_a_describer_for_explain():
    # explain tells each layer's equations by its record's row of DESCRIBERS: a family without
    # one would run in a network and fail in `typedbackprop explain`.
    from typedbackprop.explain import DESCRIBERS

    assert set(tbp.nn.FAMILIES) <= set(DESCRIBERS), set(tbp.nn.FAMILIES) - set(DESCRIBERS)


# --- the table itself: the math contract, nothing derivable stored, no adapters -----------------


@pytest.mark.parametrize("kind", list(tbp.nn.FAMILIES), ids=lambda kind: kind.__name__)
def test_each_row_holds_the_modules_own_functions_and_is_keyed_by_its_record(kind):
    family = tbp.nn.FAMILIES[kind]
    assert family.record is kind
    module = inspect.getmodule(kind)
    # forward is the module's <family>_forward itself, not a lambda around it
    assert family.forward.__name__ != "<lambda>" and family.forward.__name__.endswith("_forward")
    assert getattr(module, family.forward.__name__) is family.forward
    # (layer, x), and mode after them where the row says the forward reads it; an argument
    # with a default that run() never passes may follow (a recurrent layer's initial_state)
    arguments = inspect.signature(family.forward).parameters
    takes = [
        name
        for name, argument in arguments.items()
        if argument.default is inspect.Parameter.empty or name == "mode"
    ]
    assert takes[2:] == (["mode"] if family.reads_mode else []), takes
    assert not {"name", "symbol", "equations_forward", "equations_backward"} & {
        field.name for field in dataclasses.fields(family)
    }


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_has_parameters_is_whether_a_layer_has_arrays(case: FamilyCase):
    layer, _ = case.build(np.random.default_rng(0), np.float64)
    assert tbp.nn.FAMILIES[type(layer)].has_parameters == bool(parameters(layer))


def test_run_hands_the_mode_only_to_a_forward_that_reads_it():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4))
    training = tbp.Mode(training=True, rng=np.random.default_rng(1))
    dropped, cache = tbp.nn.FAMILIES[tbp.nn.Dropout].run(tbp.nn.Dropout(0.5), x, training)
    assert cache.mask is not None and np.array_equal(dropped, x * cache.mask)
    same, cache = tbp.nn.FAMILIES[tbp.nn.Dropout].run(tbp.nn.Dropout(0.5), x, tbp.Mode())
    assert cache.mask is None and same is x
    dense = tbp.Dense(rng.standard_normal((2, 3)), rng.standard_normal(2))
    z, _ = tbp.nn.FAMILIES[tbp.Dense].run(dense, x, training)
    assert_close(z, dense.W @ x + dense.b[:, None])


def test_run_refuses_evaluation_without_the_state_a_family_keeps():
    rng = np.random.default_rng(0)
    layer = tbp.nn.BatchNorm(1.0 + rng.random(3), rng.standard_normal(3))
    x = rng.standard_normal((3, 4))
    family = tbp.nn.FAMILIES[tbp.nn.BatchNorm]
    with pytest.raises(ValueError, match=r"^BatchNorm in evaluation mode normalizes with its"):
        family.run(layer, x, tbp.Mode())
    state = family.state.initial(layer)  # running mean 0, variance 1
    y, _ = family.run(layer, x, tbp.Mode(), state)
    assert_close(y, layer.gamma[:, None] * x / np.sqrt(1.0 + layer.eps) + layer.beta[:, None])
    trained, _ = family.run(layer, x, tbp.Mode(training=True), None)  # the batch's statistics
    assert_close(trained.mean(axis=1), layer.beta)
