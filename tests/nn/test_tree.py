"""The tree helpers: every array of a record that holds records, and a record rebuilt from them."""

import dataclasses

import numpy as np
import pytest

import typedbackprop as tbp
from typedbackprop.nn.gate import Gate
from typedbackprop.nn.lstm import LSTM, LSTMCell
from typedbackprop.nn.tree import leaves, map_leaves, replace_leaves


def gate(rng: np.random.Generator, hidden: int, features: int) -> Gate:
    return Gate(
        rng.normal(size=(hidden, features)),
        rng.normal(size=hidden),
        rng.normal(size=(hidden, hidden)),
        rng.normal(size=hidden),
    )


@pytest.fixture
def lstm(rng: np.random.Generator) -> LSTM:
    return LSTM(LSTMCell(*(gate(rng, 3, 2) for _ in range(4))))


def test_a_flat_record_has_its_arrays_by_field_name(rng):
    layer = tbp.Dense(rng.normal(size=(4, 3)), rng.normal(size=4))
    found = leaves(layer)
    assert list(found) == ["W", "b"]
    assert found["W"] is layer.W and found["b"] is layer.b
    assert leaves(tbp.Activation("relu")) == {}


def test_a_record_of_records_has_its_arrays_by_path_depth_first(lstm):
    found = leaves(lstm)
    gates = ("input_gate", "forget_gate", "cell_gate", "output_gate")
    fields = ("W_ih", "b_ih", "W_hh", "b_hh")
    assert list(found) == [f"cell.{g}.{f}" for g in gates for f in fields]
    assert found["cell.forget_gate.W_hh"] is lstm.cell.forget_gate.W_hh


def test_a_tuple_of_records_is_walked_by_index(rng):
    @dataclasses.dataclass(frozen=True)
    class Stack:
        layers: tuple[tbp.Dense, ...]
        name: str = "stack"

    stack = Stack(tuple(tbp.Dense(rng.normal(size=(2, 3)), rng.normal(size=2)) for _ in range(2)))
    assert list(leaves(stack)) == ["layers.0.W", "layers.0.b", "layers.1.W", "layers.1.b"]
    doubled = map_leaves(lambda value: 2 * value, stack)
    assert doubled.name == "stack"
    np.testing.assert_array_equal(doubled.layers[1].b, 2 * stack.layers[1].b)


def test_map_leaves_reads_the_other_records_at_the_same_path(lstm, rng):
    grad = map_leaves(lambda value: rng.normal(size=value.shape), lstm)
    stepped = map_leaves(lambda theta, g: theta - 0.5 * g, lstm, grad)
    assert type(stepped) is LSTM and type(stepped.cell.cell_gate) is Gate
    for path, value in leaves(stepped).items():
        np.testing.assert_array_equal(value, leaves(lstm)[path] - 0.5 * leaves(grad)[path])


def test_map_leaves_keeps_settings_and_leaves_its_argument_alone(rng):
    layer = tbp.Activation("leaky_relu", slope=0.2)
    assert map_leaves(lambda value: value, layer) == layer
    dense = tbp.Dense(rng.normal(size=(4, 3)), rng.normal(size=4))
    before = leaves(dense)["W"].copy()
    map_leaves(np.negative, dense)
    np.testing.assert_array_equal(dense.W, before)


def test_map_leaves_refuses_a_record_of_another_type(lstm, rng):
    dense = tbp.Dense(rng.normal(size=(4, 3)), rng.normal(size=4))
    with pytest.raises(TypeError, match="map_leaves over a LSTM was given a Dense"):
        map_leaves(lambda a, b: a, lstm, dense)


def test_replace_leaves_replaces_the_arrays_at_the_paths_given_and_keeps_the_others(lstm, rng):
    new = rng.normal(size=lstm.cell.cell_gate.b_hh.shape)
    replaced = replace_leaves(lstm, {"cell.cell_gate.b_hh": new})
    assert type(replaced) is LSTM and replaced.cell.cell_gate.b_hh is new
    for path, value in leaves(replaced).items():
        if path != "cell.cell_gate.b_hh":
            assert value is leaves(lstm)[path], path
    assert lstm.cell.cell_gate.b_hh is not new  # the argument is left alone


def test_replace_leaves_refuses_a_path_that_names_no_array(lstm, rng):
    with pytest.raises(KeyError, match=r"\['cell.cell_gate.b'\] name no array of the LSTM"):
        replace_leaves(lstm, {"cell.cell_gate.b": rng.normal(size=3)})
