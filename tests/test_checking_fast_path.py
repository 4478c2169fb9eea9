"""The trusted call's fixed cost: what a checked wrapper does under trust, and the signature of a
list of records. Costs are held by what runs (Python frames, packing), never by a timing."""

import contextvars
import dataclasses
import inspect
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from jaxtyping import Float, TypeCheckError

import typedbackprop as tbp
from typedbackprop import Array, checked
from typedbackprop.checking import CHECKS_ENABLED, checked_record, full_checks
from typedbackprop.checking.cache import signature_of, trust, trusted

pytestmark = pytest.mark.skipif(not CHECKS_ENABLED, reason="checks are off")

PACKS = inspect.CO_VARARGS | inspect.CO_VARKEYWORDS


def python_calls(call: Callable[[], object]) -> list[str]:
    """The Python functions entered while ``call`` runs, ``call`` first (C functions aside)."""
    names: list[str] = []

    def profile(frame: Any, event: str, _: object) -> None:
        if event == "call":
            names.append(frame.f_code.co_name)

    sys.setprofile(profile)
    try:
        call()
    finally:
        sys.setprofile(None)
    return names


def test_the_step_s_checked_functions_take_their_own_parameters_not_packed_ones():
    # Under trust a wrapper that took *args, **kwargs packed and unpacked every call's
    # arguments, as much again as the rest of the trusted call, some thirty times a step.
    step = [
        tbp.nn.affine_forward,
        tbp.nn.affine_grad_params,
        tbp.nn.affine_grad_input,
        tbp.nn.dense_forward,
        tbp.nn.dense_backward,
        tbp.nn.affine.dense_backward_params,
        tbp.nn.sigmoid_forward,
        tbp.nn.sigmoid_backward,
        tbp.nn.activation_forward,
        tbp.nn.activation_backward,
        tbp.nn.squared_error,
        tbp.nn.network_forward,
        tbp.nn.network_backward,
        tbp.nn.network_loss_and_grads,
        tbp.loss_and_grads,
    ]
    for function in step:
        assert function.__code__.co_flags & PACKS == 0, function.__name__
        assert full_checks(function) is not None, function.__name__  # still a checked wrapper


def test_a_trusted_call_enters_the_wrapper_and_the_body_alone(rng):
    W, b, a_prev = rng.standard_normal((4, 3)), rng.standard_normal(4), rng.standard_normal((3, 5))
    trust.depth += 1
    try:
        entered = python_calls(lambda: tbp.nn.affine_forward(W, b, a_prev))
    finally:
        trust.depth -= 1
    assert entered[1:] == ["affine_forward", "affine_forward"]  # the lambda, the wrapper, the body


def scaled(
    W: Float[Array, "out inp"],
    a_prev: Float[Array, "inp batch"],
    scale: float = 1.0,
    /,
    *,
    shift: Float[Array, " out"] | None = None,
) -> Float[Array, "out batch"]:
    z = scale * (W @ a_prev)
    return z if shift is None else z + shift[:, np.newaxis]


def with_defaults(
    W: Float[Array, "out inp"],
    a_prev: Float[Array, "inp batch"],
    scale: float = 1.0,
    *,
    shift: Float[Array, " out"] | None = None,
) -> Float[Array, "out batch"]:
    z = scale * (W @ a_prev)
    return z if shift is None else z + shift[:, np.newaxis]


def test_defaults_and_keywords_reach_the_body_as_given_trusted_or_not(rng):
    checked_function = checked(with_defaults)
    assert checked_function.__code__.co_flags & PACKS == 0
    W, a_prev, shift = rng.standard_normal((4, 3)), rng.standard_normal((3, 5)), np.arange(4.0)
    calls: list[Callable[[Callable[..., Any]], Any]] = [
        lambda f: f(W, a_prev),
        lambda f: f(W, a_prev, 2.0),
        lambda f: f(W, a_prev, scale=2.0),
        lambda f: f(W, a_prev, shift=shift),
        lambda f: f(a_prev=a_prev, W=W, scale=3.0, shift=shift),
    ]
    for call in calls:
        want = call(with_defaults)
        np.testing.assert_array_equal(call(checked_function), want)  # checked in full
        np.testing.assert_array_equal(call(checked_function), want)  # remembered
        trust.depth += 1
        try:
            np.testing.assert_array_equal(call(checked_function), want)  # trusted
        finally:
            trust.depth -= 1
    with pytest.raises(TypeCheckError):
        checked_function(W, a_prev, shift=np.arange(5.0))  # out is 4, not 5
    with pytest.raises(TypeError, match="scale"):
        checked_function(W, a_prev, 1.0, scale=2.0)  # Python's own refusal, as unwrapped


def shifted(
    W: Float[Array, "out inp"],
    a_prev: Float[Array, "inp batch"],
    scale: float = 1.0,
    shift: Float[Array, " out"] | None = None,
) -> Float[Array, "out batch"]:
    z = scale * (W @ a_prev)
    return z if shift is None else z + shift[:, np.newaxis]


def test_defaults_all_given_or_none_are_handed_on_by_position_and_still_checked(rng):
    # The wrapper's shortcut when no parameter with a default is left out, or every one is.
    checked_function = checked(shifted)
    W, a_prev, shift = rng.standard_normal((4, 3)), rng.standard_normal((3, 5)), np.arange(4.0)
    calls: list[Callable[[Callable[..., Any]], Any]] = [
        lambda f: f(W, a_prev),
        lambda f: f(W, a_prev, 2.0, shift),
        lambda f: f(W, a_prev, scale=2.0, shift=shift),
        lambda f: f(W, a_prev, 2.0),
        lambda f: f(W, a_prev, shift=shift),  # a gap: shift by name
    ]
    for call in calls:
        want = call(shifted)
        for _ in range(2):  # checked in full, then remembered
            np.testing.assert_array_equal(call(checked_function), want)
    for _ in range(2):
        with pytest.raises(TypeCheckError):
            checked_function(W, a_prev, 2.0, np.arange(5.0))  # out is 4, not 5
        with pytest.raises(TypeCheckError):
            checked_function(W, a_prev.T, 2.0, shift)
    with pytest.raises(TypeError, match="scale"):
        checked_function(W, a_prev, 1.0, scale=2.0)  # Python's own refusal, as unwrapped


def test_a_positional_only_default_keeps_the_packing_wrapper(rng):
    checked_function = checked(scaled)  # a default by position only cannot be handed on by name
    assert checked_function.__code__.co_flags & PACKS
    W, a_prev = rng.standard_normal((4, 3)), rng.standard_normal((3, 5))
    np.testing.assert_array_equal(checked_function(W, a_prev, 2.0), scaled(W, a_prev, 2.0))
    with pytest.raises(TypeCheckError):
        checked_function(W, a_prev.T)


def test_a_refusal_after_a_trusted_call_is_still_a_refusal(rng):
    W, b, a_prev = rng.standard_normal((4, 3)), rng.standard_normal(4), rng.standard_normal((3, 5))
    trust.depth += 1
    try:
        tbp.nn.affine_forward(W, b, a_prev)
    finally:
        trust.depth -= 1
    before = full_checks(tbp.nn.affine_forward)
    with pytest.raises(TypeCheckError):
        tbp.nn.affine_forward(W, b[:3], a_prev)
    assert full_checks(tbp.nn.affine_forward) == before + 1


def test_the_signature_of_a_list_of_records_takes_one_frame_per_record(rng):
    layers = [
        tbp.Dense(rng.standard_normal((4, 3)), rng.standard_normal(4)),
        tbp.Dense(rng.standard_normal((2, 4)), rng.standard_normal(2)),
        tbp.Dense(rng.standard_normal((1, 2)), rng.standard_normal(1)),
    ]
    signature_of(layers, deep=True)  # the first learns how a Dense gives its signature
    entered = python_calls(lambda: signature_of(layers, deep=True))
    # the lambda, signature_of(list), then one frame per Dense: the function written for its
    # fields, which reads each field once
    assert entered[1:] == ["signature_of"] + ["record_signature"] * 3
    assert signature_of(layers, deep=True) == (
        list,
        tuple(  # a record of exact arrays: one flat tuple
            (tbp.Dense, layer.W.shape, layer.W.dtype, layer.b.shape, layer.b.dtype)
            for layer in layers
        ),
    )


def test_a_list_that_opens_with_a_record_gives_each_other_item_its_own_signature(rng):
    layer = tbp.Dense(rng.standard_normal((4, 3)), rng.standard_normal(4))
    norm = tbp.nn.LayerNorm(rng.standard_normal(4), rng.standard_normal(4))
    x = rng.standard_normal((3, 5))
    mixed = [layer, x, "tanh", norm, 2.0, layer]
    expected = (
        list,
        tuple(signature_of(item, deep=True) for item in mixed),
    )
    assert signature_of(mixed, deep=True) == expected
    assert expected[1][1:3] == ((x.shape, x.dtype), (str, "tanh"))
    assert signature_of([layer, {"a": x}], deep=True) is None  # a dict's items: no signature


class Tagged(np.ndarray):
    """An array subclass: its type belongs to its signature."""


def test_a_record_of_array_subclasses_keeps_their_types_in_its_signature(rng):
    W = rng.standard_normal((4, 3)).view(Tagged)
    layer = tbp.Dense(W, rng.standard_normal(4))
    assert signature_of(layer, deep=True) == (
        tbp.Dense,
        ((Tagged, (4, 3), W.dtype), ((4,), layer.b.dtype)),
    )


def test_a_traceback_through_the_generated_wrapper_shows_its_line(rng):
    @checked
    def fails(W: Float[Array, "out inp"]) -> Float[Array, "out inp"]:
        raise RuntimeError("in the body")

    with pytest.raises(RuntimeError) as error:
        fails(rng.standard_normal((4, 3)))
    text = "".join(traceback.format_exception(error.value))
    assert "return _tbp_check(W)" in text  # the wrapper's own line, as a file's would show


@pytest.mark.parametrize("function", ["loss_and_grads", "predict", "forward"])
def test_a_remembered_call_does_not_check_its_names_and_layers_again(monkeypatch, rng, function):
    # check_names and _check_layers read the names, the layers' types, shapes and dtypes and
    # x's: all of them in the signature that passed. Sizes seen nowhere else in the suite.
    from typedbackprop.nn import network

    checked_layers: list[int] = []
    real = network._check_layers

    def counting(layers: Any, x: Any) -> None:
        checked_layers.append(len(layers))
        real(layers, x)

    monkeypatch.setattr(network, "_check_layers", counting)
    sizes = (7, 6, 11)
    layers = [
        tbp.Dense(rng.standard_normal((n_out, n_in)), rng.standard_normal(n_out))
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True)
    ]
    x, y = rng.standard_normal((7, 13)), rng.standard_normal((11, 13))
    calls = {
        "loss_and_grads": lambda layers: tbp.loss_and_grads(layers, x, y, "tanh"),
        "predict": lambda layers: tbp.predict(layers, x, "tanh"),
        "forward": lambda layers: tbp.nn.forward(layers, x, "tanh"),
    }
    for _ in range(3):
        calls[function](layers)
    assert checked_layers == [2]
    unchained = [layers[0], tbp.Dense(rng.standard_normal((11, 5)), rng.standard_normal(11))]
    for _ in range(2):  # a new signature: checked, refused, so never remembered
        with pytest.raises(ValueError, match="do not chain"):
            calls[function](unchained)
    assert checked_layers == [2, 2, 2]


def test_a_stated_signature_keeps_the_packing_wrapper(rng):
    # A record's fields are checked as a call of a function whose __signature__ names them but
    # whose code takes *values: a wrapper written from the stated signature could call the code
    # with keywords it does not take.
    def fields(*values: object) -> None:
        """Stand-in body."""

    fields.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(
                "W", inspect.Parameter.KEYWORD_ONLY, annotation=Float[Array, "out inp"]
            )
        ],
        return_annotation=None,
    )
    fields.__annotations__ = {"W": Float[Array, "out inp"], "return": None}
    checked_fields = checked(fields)
    assert checked_fields.__code__.co_flags & PACKS
    with pytest.raises(TypeError):
        checked_fields(W=rng.standard_normal((4, 3)))  # the code takes no keywords: as unwrapped


def two_layers(rng: np.random.Generator) -> tuple[list[tbp.Dense], Any, Any]:
    """A 3-4-2 network on a batch of 5: every dimension its own size."""
    layers = [
        tbp.Dense(rng.standard_normal((4, 3)), rng.standard_normal(4)),
        tbp.Dense(rng.standard_normal((2, 4)), rng.standard_normal(2)),
    ]
    return layers, rng.standard_normal((3, 5)), rng.standard_normal((2, 5))


def test_a_layer_reshaped_in_place_after_its_signature_passed_is_refused(rng):
    # The same list, the same Dense, the same array object: only its shape read again tells.
    layers, x, y = two_layers(rng)
    for _ in range(3):
        tbp.loss_and_grads(layers, x, y)
    layers[1].W.shape = (4, 2)  # in place: W is now (inp, out)
    with pytest.raises(ValueError, match=r"layer 1 expects inp=2 inputs but layer 0 gives 4"):
        tbp.loss_and_grads(layers, x, y)


def test_the_signature_of_a_record_falls_back_to_each_field_s_own(rng):
    # A field that is no exact array (a record inside a record, a number) takes the general way.
    layer = tbp.nn.LayerNorm(rng.standard_normal(3), rng.standard_normal(3))
    cache = tbp.nn.layernorm_forward(layer, rng.standard_normal((3, 5)))[1]
    assert signature_of(cache, deep=True) == (
        type(cache),
        (
            (
                tbp.nn.LayerNorm,
                (
                    (layer.gamma.shape, layer.gamma.dtype),
                    (layer.beta.shape, layer.beta.dtype),
                    float,
                ),
            ),
            *((field.shape, field.dtype) for field in (cache.x, cache.mean, cache.rstd)),
        ),
    )


def test_trust_is_per_thread_a_call_on_another_thread_is_checked_meanwhile(rng):
    W, b, a_prev = rng.standard_normal((4, 3)), rng.standard_normal(4), rng.standard_normal((3, 5))
    inside, release, seen = threading.Event(), threading.Event(), []

    @checked(vouches_for_inner_calls=True)
    def outer(W: Float[Array, "out inp"], a_prev: Float[Array, "inp batch"]) -> Any:
        if trust.depth:  # the remembered call, trusted: wait while the other thread calls
            seen.append(trust.depth)
            inside.set()
            release.wait(30)
        return tbp.nn.affine_forward(W, b, a_prev)

    def twice() -> None:
        outer(W, a_prev)
        outer(W, a_prev)

    thread = threading.Thread(target=twice)
    thread.start()
    try:
        assert inside.wait(30)
        assert trust.depth == 0
        with pytest.raises(TypeCheckError):
            tbp.nn.affine_forward(W, b[:3], a_prev)  # out is 4, not 3: refused here, now
    finally:
        release.set()
        thread.join(30)
    assert seen == [1]


def test_a_context_copied_inside_a_trusted_call_is_not_trusted_after_it(rng):
    # An asyncio task created inside the call would run in such a copy, perhaps later.
    W, b, a_prev = rng.standard_normal((4, 3)), rng.standard_normal(4), rng.standard_normal((3, 5))
    copies: list[contextvars.Context] = []

    @checked(vouches_for_inner_calls=True)
    def outer(W: Float[Array, "out inp"], a_prev: Float[Array, "inp batch"]) -> Any:
        copies.append(contextvars.copy_context())
        return tbp.nn.affine_forward(W, b, a_prev)

    outer(W, a_prev)
    outer(W, a_prev)  # trusted: its copy saw trust.depth 1 while the call ran
    assert copies[1].run(lambda: trust.depth) == 0
    with pytest.raises(TypeCheckError):
        copies[1].run(tbp.nn.affine_forward, W, b[:3], a_prev)


def test_trust_depth_counts_up_and_down_and_never_below_zero():
    assert trust.depth == 0
    trust.depth += 1
    trust.depth += 1
    try:
        assert trust.depth == 2
        assert trusted()
    finally:
        trust.depth -= 1
        trust.depth -= 1
    assert trust.depth == 0
    assert not trusted()
    with pytest.raises(ValueError, match="counts calls"):
        trust.depth -= 1


@checked_record()
@dataclasses.dataclass(frozen=True, slots=True)
class Gains:
    gain: Float[Array, " features"]
    shift: Float[Array, " features"] = dataclasses.field(default_factory=lambda: np.zeros(3))
    _: dataclasses.KW_ONLY
    scale: Float[Array, " features"] | None = None


def test_a_record_s_init_takes_its_own_parameters_and_still_checks_every_construction(rng):
    assert Gains.__init__.__code__.co_flags & PACKS == 0
    assert tbp.Dense.__init__.__code__.co_flags & PACKS == 0
    assert Gains(np.ones(3)).shift.shape == (3,)  # the default factory, as the dataclass's own
    Gains(np.ones(4), np.zeros(4), scale=np.ones(4))
    for _ in range(2):  # first call and remembered
        with pytest.raises(TypeCheckError, match="shift: features is 4 here"):
            Gains(np.ones(3), np.zeros(4))
        with pytest.raises(TypeCheckError, match="scale: features is 5 here"):
            Gains(np.ones(4), np.zeros(4), scale=np.ones(5))
    with pytest.raises(TypeError, match="positional"):
        Gains(np.ones(4), np.zeros(4), np.ones(4))  # scale is keyword-only, as in the dataclass
    trust.depth += 1
    try:
        tbp.Dense(rng.standard_normal((4, 3)), rng.standard_normal(4))  # inside: not checked
    finally:
        trust.depth -= 1
    with pytest.raises(TypeCheckError, match="W looks transposed"):
        tbp.Dense(rng.standard_normal((4, 3)), rng.standard_normal(3))


@pytest.mark.parametrize("size", [1, 15, 64, 65, 300])  # summed as floats up to 64, then vdot
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_require_finite_names_the_first_non_finite_entry_at_any_size(size, bad):
    values = np.linspace(-1.0, 1.0, size)
    tbp.require_finite("x", values)
    first = (size - 1) // 2
    values[first] = bad
    if first < size - 1:
        values[-1] = -bad  # a later one: the first is named (and +inf with -inf sums to nan)
    with pytest.raises(ValueError, match=rf"^x contains {bad} at index \({first},\)$"):
        tbp.require_finite("x", values)


@pytest.mark.parametrize("size", [15, 300])
def test_require_finite_passes_finite_entries_whose_sum_overflows(size):
    values = np.full(size, np.finfo(np.float64).max)
    tbp.require_finite("x", values)  # the sum is inf; every entry is finite
    tbp.require_finite("x", np.zeros((0, 3)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_remembered_trusted_step_still_names_a_non_finite_input(rng, bad):
    layers, x, y = two_layers(rng)
    for _ in range(3):  # the signature passed: later calls are trusted inside
        tbp.loss_and_grads(layers, x, y)
    x[2, 4] = bad
    with pytest.raises(ValueError, match=r"^x contains .* at index \(2, 4\)$"):
        tbp.loss_and_grads(layers, x, y)
    x[2, 4] = 0.0
    y[1, 3] = bad
    with pytest.raises(ValueError, match=r"^y contains .* at index \(1, 3\)$"):
        tbp.loss_and_grads(layers, x, y)


def test_signatures_that_alternate_are_remembered_and_a_wrong_one_is_refused_each_time(rng):
    # The last signature that passed is compared first, the others are looked up. Sizes seen
    # nowhere else in the suite, so that no signature was remembered before.
    x, y = rng.standard_normal((7, 13)), rng.standard_normal((3, 13))
    small, wide = (
        [
            tbp.Dense(rng.standard_normal((hidden, 7)), rng.standard_normal(hidden)),
            tbp.Dense(rng.standard_normal((3, hidden)), rng.standard_normal(3)),
        ]
        for hidden in (9, 11)
    )
    unchained = [small[0], wide[1]]
    before = full_checks(tbp.loss_and_grads)
    for _ in range(3):
        for layers in (small, wide):
            loss, grads = tbp.loss_and_grads(layers, x, y)
            assert [grad.W.shape for grad in grads] == [layer.W.shape for layer in layers]
        with pytest.raises(ValueError, match="do not chain"):
            tbp.loss_and_grads(unchained, x, y)
    assert full_checks(tbp.loss_and_grads) == before + 2 + 3  # each network once, each refusal
