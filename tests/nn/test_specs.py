"""Every backward's index form, as its Spec states it, is what the code computes.

Each row of ``CASES`` pairs a :class:`~typedbackprop.nn.specs.Spec` with the function it
specifies. The tests build that function's arguments from its own annotations, with a different
size for every dimension (so a wrong letter in the einsum, a swapped pair of indices or a sum over
the wrong axis changes a shape or a value), evaluate the spec with ``np.einsum`` and compare it
with the function's result; check that the letters of each einsum term are the dimensions of the
operand's annotation; and check that the function's docstring states exactly the spec's index
form. The local derivatives a spec names (``σ'(z)``, the softmax Jacobian ``J``) are computed
here from their textbook definitions at ``z``, independently of the package.
"""

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import pytest
from helpers import assert_close
from hypothesis import given, settings
from hypothesis import strategies as st

import typedbackprop as tbp
from typedbackprop.nn import activations, affine, batch_first, batchnorm, softmax
from typedbackprop.nn.specs import Spec

SLOPE = 0.2
"""Leaky ReLU's slope in these tests: not the default, so a forgotten slope shows."""

LETTERS = {"out": "o", "in": "i", "batch": "b", "features": "f", "classes": "ck"}
"""The einsum letters each dimension may take (``classes`` has two: a Jacobian has it twice)."""


@dataclass(frozen=True)
class SpecCase:
    """A spec, the function whose docstring states it, and the function's value of it."""

    spec: Spec
    function: Callable[..., object]
    compute: Callable[[dict[str, np.ndarray]], np.ndarray]
    """``arguments -> gradient``: what the package computes for ``spec.result``."""


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _softmax_jacobian(z):
    """``J_{cbk} = ∂a_{cb}/∂z_{kb} = a_{cb} ([c = k] − a_{kb})``, from the definition."""
    e = np.exp(z - z.max(axis=0))
    a = e / e.sum(axis=0)
    identity = np.eye(z.shape[0])[:, np.newaxis, :]  # [c = k], broadcast over b
    return a[:, :, np.newaxis] * (identity - a.T[np.newaxis, :, :])


LOCAL_DERIVATIVES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "σ'(z)": lambda z: _sigmoid(z) * (1.0 - _sigmoid(z)),
    "tanh'(z)": lambda z: 1.0 - np.tanh(z) ** 2,
    "relu'(z)": lambda z: (z > 0).astype(z.dtype),
    "leaky_relu'(z)": lambda z: np.where(z > 0, 1.0, SLOPE),
    "identity'(z)": np.ones_like,
    "J": _softmax_jacobian,
}
"""Each local derivative a spec names, as a function of the forward's input ``z``."""


def _elementwise(forward, backward, **settings):
    return lambda v: backward(v["grad_a"], v["z"], forward(v["z"], **settings), **settings)


CASES = [
    SpecCase(
        affine.AFFINE_GRAD_W,
        tbp.affine_grad_params,
        lambda v: tbp.affine_grad_params(v["grad_z"], v["a_prev"])[0],
    ),
    SpecCase(
        affine.AFFINE_GRAD_B,
        tbp.affine_grad_params,
        lambda v: tbp.affine_grad_params(v["grad_z"], v["a_prev"])[1],
    ),
    SpecCase(
        affine.AFFINE_GRAD_A_PREV,
        tbp.affine_grad_input,
        lambda v: tbp.affine_grad_input(v["grad_z"], v["W"]),
    ),
    SpecCase(
        batch_first.BATCH_FIRST_GRAD_W,
        tbp.affine_grad_params_batch_first,
        lambda v: tbp.affine_grad_params_batch_first(v["grad_z"], v["a_prev"])[0],
    ),
    SpecCase(
        batch_first.BATCH_FIRST_GRAD_B,
        tbp.affine_grad_params_batch_first,
        lambda v: tbp.affine_grad_params_batch_first(v["grad_z"], v["a_prev"])[1],
    ),
    SpecCase(
        batch_first.BATCH_FIRST_GRAD_A_PREV,
        tbp.affine_grad_input_batch_first,
        lambda v: tbp.affine_grad_input_batch_first(v["grad_z"], v["W"]),
    ),
    SpecCase(
        activations.SIGMOID_GRAD_Z,
        tbp.sigmoid_backward,
        _elementwise(tbp.sigmoid_forward, tbp.sigmoid_backward),
    ),
    SpecCase(
        activations.TANH_GRAD_Z,
        tbp.tanh_backward,
        _elementwise(tbp.tanh_forward, tbp.tanh_backward),
    ),
    SpecCase(
        activations.RELU_GRAD_Z,
        tbp.relu_backward,
        _elementwise(tbp.relu_forward, tbp.relu_backward),
    ),
    SpecCase(
        activations.LEAKY_RELU_GRAD_Z,
        tbp.leaky_relu_backward,
        _elementwise(tbp.leaky_relu_forward, tbp.leaky_relu_backward, slope=SLOPE),
    ),
    SpecCase(
        activations.IDENTITY_GRAD_Z,
        tbp.identity_backward,
        _elementwise(tbp.identity_forward, tbp.identity_backward),
    ),
    SpecCase(
        softmax.SOFTMAX_GRAD_Z,
        tbp.softmax_backward,
        _elementwise(tbp.softmax_forward, tbp.softmax_backward),
    ),
    SpecCase(
        batchnorm.BATCHNORM_GRAD_GAMMA,
        batchnorm.batchnorm_grad_params,
        lambda v: batchnorm.batchnorm_grad_params(v["grad_y"], v["x_hat"])[0],
    ),
    SpecCase(
        batchnorm.BATCHNORM_GRAD_BETA,
        batchnorm.batchnorm_grad_params,
        lambda v: batchnorm.batchnorm_grad_params(v["grad_y"], v["x_hat"])[1],
    ),
    SpecCase(
        batchnorm.BATCHNORM_GRAD_X_FIXED,
        batchnorm.batchnorm_grad_input_fixed,
        lambda v: batchnorm.batchnorm_grad_input_fixed(v["grad_y"], v["gamma"], v["inv_std"]),
    ),
]
IDS = [f"{case.function.__name__}-{case.spec.result}" for case in CASES]

SPEC_MODULES: list[ModuleType] = [affine, activations, softmax, batch_first, batchnorm]
"""The modules whose every Spec must have a row above (a new family adds its module here)."""


def dimensions(function: Callable[..., object]) -> dict[str, tuple[str, ...]]:
    """Each array argument's dimension names, read from its annotation: ``{"W": ("out", "in")}``."""
    hints = typing.get_type_hints(function, include_extras=True)
    return {
        name: tuple(hint.dim_str.split())
        for name, hint in hints.items()
        if name != "return" and hasattr(hint, "dim_str")
    }


def arguments(
    case: SpecCase, sizes: dict[str, int], rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Random arguments for the case's function, shaped by its annotations and ``sizes``."""
    values = {
        name: rng.standard_normal(tuple(sizes[dimension] for dimension in dims))
        for name, dims in dimensions(case.function).items()
    }
    if "z" in values:
        values["z"] += np.where(values["z"] >= 0, 0.1, -0.1)  # clear of ReLU's kink at 0
    return values


def operand_values(case: SpecCase, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    derived = {
        name: LOCAL_DERIVATIVES[name](values["z"])
        for name in case.spec.operands
        if name not in values
    }
    return {**values, **derived}


def returned(function: Callable[..., object]) -> dict[str, tuple[str, ...]]:
    """Each returned array's dimension names, by the name its docstring's Returns section gives.

    ``{"grad_W": ("out", "in"), "grad_b": ("out",)}`` for ``affine_grad_params``: the names come
    from numpydoc (one per entry, or several on one line, ``grad_W, grad_b, grad_a_prev``), the
    dimensions from the return annotation, in order.
    """
    lines = inspect.getdoc(function).splitlines()
    start = lines.index("Returns") + 2
    names: list[str] = []
    for line in lines[start:]:
        if line.startswith("---") or (names and not line.strip()):
            break
        if line and not line[0].isspace():
            names += [name.strip() for name in line.split(",")]
    hint = typing.get_type_hints(function, include_extras=True)["return"]
    parts = typing.get_args(hint) if typing.get_origin(hint) is tuple else (hint,)
    assert len(parts) == len(names), (function.__name__, names)
    return {
        name: tuple(part.dim_str.split())
        for name, part in zip(names, parts, strict=True)
        if hasattr(part, "dim_str")
    }


DISTINCT = st.lists(st.integers(1, 9), min_size=5, max_size=5, unique=True)


def test_every_spec_in_the_package_has_a_row():
    found = {
        id(value)
        for module in SPEC_MODULES
        for value in vars(module).values()
        if isinstance(value, Spec)
    }
    assert found == {id(case.spec) for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_the_docstring_states_the_specs_index_form(case):
    assert case.spec.index_form() in inspect.getdoc(case.function), case.spec.index_form()


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_each_terms_letters_are_its_operands_dimensions(case):
    dims = dimensions(case.function)
    allowed = {letter for names in dims.values() for name in names for letter in LETTERS[name]}
    for name, term in zip(case.spec.operands, case.spec.terms, strict=True):
        if name in dims:
            assert len(term) == len(dims[name]), (name, term)
            for letter, dimension in zip(term, dims[name], strict=True):
                assert letter in LETTERS[dimension], (name, term, dims[name])
        else:
            assert name in LOCAL_DERIVATIVES, f"{name} is neither an argument nor a derivative"
            assert set(term) <= allowed, (name, term)
    result_dims = returned(case.function)[case.spec.result]
    value = case.spec.result.removeprefix("grad_")
    if value in dims:  # the rule: a gradient has exactly the annotation of its value
        assert result_dims == dims[value]
    assert len(case.spec.output) == len(result_dims)
    for letter, dimension in zip(case.spec.output, result_dims, strict=True):
        assert letter in LETTERS[dimension], (case.spec.output, result_dims)


@pytest.mark.parametrize("case", CASES, ids=IDS)
@settings(deadline=None, max_examples=15)
@given(drawn=DISTINCT, seed=st.integers(0, 2**32 - 1))
def test_the_einsum_is_what_the_function_computes(case, drawn, seed):
    sizes = dict(zip(["out", "in", "batch", "features", "classes"], drawn, strict=True))
    values = arguments(case, sizes, np.random.default_rng(seed))
    expected = case.spec.evaluate(operand_values(case, values))
    actual = case.compute(values)
    assert actual.shape == expected.shape
    assert_close(actual, expected, rtol=1e-12)


@pytest.mark.parametrize(
    ("wrong", "sizes"),
    [
        pytest.param("ob,ib->io", {"out": 2, "in": 3, "batch": 5}, id="transposed result"),
        pytest.param("ob,ib->ob", {"out": 2, "in": 3, "batch": 5}, id="sum over in, not batch"),
        pytest.param("ob,ib->io", {"out": 3, "in": 3, "batch": 5}, id="transposed, W square"),
        pytest.param("ob,ib->oi", {"out": 2, "in": 5, "batch": 5}, id="right spec, in == batch"),
    ],
)
def test_the_comparison_has_teeth(wrong, sizes):
    """A wrong einsum for ``affine_grad_params`` differs from the code in shape or in value."""
    case = CASES[0]
    values = arguments(case, sizes, np.random.default_rng(3))
    actual = case.compute(values)
    claimed = Spec("grad_W", wrong, ("grad_z", "a_prev")).evaluate(values)
    agrees = claimed.shape == actual.shape and np.allclose(claimed, actual, rtol=1e-12)
    assert agrees == (wrong == case.spec.equation)


def test_index_form_and_einsum_call_render_the_spec():
    spec = affine.AFFINE_GRAD_A_PREV
    assert spec.index_form() == "∂L/∂a_prev_{ib} = Σ_o δ_{ob} W_{oi}"
    assert spec.einsum_call() == 'np.einsum("ob,oi->ib", grad_z, W)'
    assert spec.summed == "o"
    assert softmax.SOFTMAX_GRAD_Z.index_form() == "∂L/∂z_{kb} = Σ_c ∂L/∂a_{cb} J_{cbk}"


@pytest.mark.parametrize(
    ("equation", "operands"),
    [("ob,ib", ("grad_z", "a_prev")), ("ob->o", ("grad_z", "a_prev")), ("ob->oq", ("grad_z",))],
)
def test_a_malformed_spec_is_refused(equation, operands):
    with pytest.raises(ValueError):
        Spec("grad_W", equation, operands)
