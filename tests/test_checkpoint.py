"""Tests for typedbackprop.checkpoint: round trip, atomic writes, damaged files, data splits."""

import dataclasses
import json
import os
import zipfile

import numpy as np
import pytest

import typedbackprop as tbp
from typedbackprop.checkpoint import (
    FORMAT,
    SplitMismatchError,
    check_split,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
    save_network,
)
from typedbackprop.datasets import iris
from typedbackprop.initialize import init_layers
from typedbackprop.nn.tree import leaves
from typedbackprop.training import Architecture

ARCHITECTURE = Architecture((4, 5, 3), "tanh", "softmax", "cross_entropy")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_is_bit_identical(tmp_path, dtype):
    layers = init_layers(ARCHITECTURE.sizes, np.random.default_rng(0), dtype=dtype)
    path = tmp_path / "net.npz"
    save_checkpoint(path, layers, ARCHITECTURE)
    loaded, architecture = load_checkpoint(path)
    assert architecture == ARCHITECTURE
    x = np.random.default_rng(1).normal(size=(4, 9)).astype(dtype)
    before = tbp.predict(layers, x, "tanh", "softmax")
    after = tbp.predict(loaded, x, "tanh", "softmax")
    assert after.dtype == dtype
    np.testing.assert_array_equal(before, after)
    for a, b in zip(layers, loaded, strict=True):
        np.testing.assert_array_equal(a.W, b.W)
        np.testing.assert_array_equal(a.b, b.b)


def test_save_replaces_atomically_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "net.npz"
    first = init_layers(ARCHITECTURE.sizes, np.random.default_rng(0))
    save_checkpoint(path, first, ARCHITECTURE)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted)
    second = init_layers(ARCHITECTURE.sizes, np.random.default_rng(1))
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, second, ARCHITECTURE)
    assert os.listdir(tmp_path) == ["net.npz"]  # the old file, whole; no temporary left
    loaded, _ = load_checkpoint(path)
    np.testing.assert_array_equal(loaded[0].W, first[0].W)


def test_layers_must_match_the_architecture(tmp_path):
    layers = init_layers((4, 6, 3), np.random.default_rng(0))
    with pytest.raises(ValueError, match="do not match sizes"):
        save_checkpoint(tmp_path / "net.npz", layers, ARCHITECTURE)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint at .*absent.npz"):
        load_checkpoint(tmp_path / "absent.npz")


def test_missing_directory(tmp_path):
    layers = init_layers(ARCHITECTURE.sizes, np.random.default_rng(0))
    with pytest.raises(FileNotFoundError, match="there is no directory"):
        save_checkpoint(tmp_path / "absent" / "net.npz", layers, ARCHITECTURE)


def test_the_file_gets_the_usual_permissions_not_the_temporary_files(tmp_path):
    path = tmp_path / "net.npz"
    save_checkpoint(path, init_layers(ARCHITECTURE.sizes, np.random.default_rng(0)), ARCHITECTURE)
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask  # mkstemp's file would be 0o600


def test_the_file_is_a_plain_npz_with_each_layers_family_and_settings(tmp_path):
    path = tmp_path / "net.npz"
    save_checkpoint(path, init_layers(ARCHITECTURE.sizes, np.random.default_rng(0)), ARCHITECTURE)
    with np.load(path, allow_pickle=False) as archive:  # no pickles: safe to open
        assert sorted(archive.files) == ["0.W", "0.b", "2.W", "2.b", "meta"]
        meta = json.loads(str(archive["meta"]))
    dense = {"type": "Dense", "settings": {}, "records": {}}
    assert meta == {
        "format": "typedbackprop-checkpoint-3",
        "sizes": [4, 5, 3],
        "activation": "tanh",
        "output_activation": "softmax",
        "loss": "cross_entropy",
        "layers": [
            dense,
            {"type": "Activation", "settings": {"name": "tanh", "slope": 0.01}, "records": {}},
            dense,
            {"type": "Activation", "settings": {"name": "softmax", "slope": 0.01}, "records": {}},
        ],
        "model": None,
    }


def test_version_2_files_are_still_read(tmp_path):
    path = tmp_path / "v2.npz"
    W0, b0 = np.arange(6.0).reshape(3, 2), np.array([0.5, -0.5, 1.0])
    np.savez(path, meta=meta(format="typedbackprop-checkpoint-2", sizes=[2, 3]), W0=W0, b0=b0)
    checkpoint = read_checkpoint(path)
    assert checkpoint.version == 2 and checkpoint.loss == "squared_error"
    np.testing.assert_array_equal(checkpoint.layers[0].W, W0)
    assert checkpoint.network == [checkpoint.layers[0], tbp.Activation("identity")]


def test_any_network_round_trips_with_its_settings(tmp_path):
    rng = np.random.default_rng(0)
    network = [
        tbp.Dense(rng.standard_normal((4, 3)), rng.standard_normal(4)),
        tbp.Activation("leaky_relu", slope=0.2),
        tbp.Dense(rng.standard_normal((2, 4)), rng.standard_normal(2)),
        tbp.Activation("softmax"),
    ]
    path = tmp_path / "any.npz"
    save_network(path, network, "cross_entropy", model="custom")
    checkpoint = read_checkpoint(path)
    assert checkpoint.architecture is None and checkpoint.layers == []
    assert checkpoint.loss == "cross_entropy" and checkpoint.model == "custom"
    assert checkpoint.network[1] == tbp.Activation("leaky_relu", slope=0.2)
    x = rng.standard_normal((3, 5))
    np.testing.assert_array_equal(
        tbp.network_forward(checkpoint.network, x)[0], tbp.network_forward(network, x)[0]
    )
    with pytest.raises(ValueError, match="custom network, not a multilayer perceptron"):
        load_checkpoint(path)


def test_a_layer_of_no_family_is_refused_in_one_line(tmp_path):
    path = tmp_path / "any.npz"
    save_network(path, [tbp.Activation("tanh")], "squared_error")
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    record = json.loads(str(arrays["meta"]))
    record["layers"][0]["type"] = "os.system"
    arrays["meta"] = np.array(json.dumps(record))
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="layer 0 is of no known family"):
        read_checkpoint(path)


def test_the_split_is_recorded_in_the_json_and_read_back(tmp_path):
    data = iris(seed=7)
    path = tmp_path / "net.npz"
    save_checkpoint(
        path, init_layers(ARCHITECTURE.sizes, np.random.default_rng(0)), ARCHITECTURE, data.split
    )
    with np.load(path, allow_pickle=False) as archive:
        split = json.loads(str(archive["meta"]))["split"]
    assert split["dataset"] == "iris" and split["seed"] == 7 and split["standardize"] is True
    assert split["test_fraction"] == 0.2 and split["examples"] == 150
    assert split["test_digest"].startswith("sha256:") and len(split["test_digest"]) == 71
    checkpoint = read_checkpoint(path)
    assert checkpoint.split == data.split and checkpoint.version == 3
    assert check_split(checkpoint.split, iris(seed=7)) is None


def test_version_1_files_are_still_read(tmp_path):
    path = tmp_path / "old.npz"
    W0, b0 = np.arange(6.0).reshape(3, 2), np.array([0.5, -0.5, 1.0])
    np.savez(path, meta=meta(sizes=[2, 3]), W0=W0, b0=b0)  # as version 1 wrote them
    checkpoint = read_checkpoint(path)
    assert checkpoint.version == 1 and checkpoint.split is None
    assert checkpoint.architecture == Architecture((2, 3), "sigmoid", "identity", "squared_error")
    np.testing.assert_array_equal(checkpoint.layers[0].W, W0)
    np.testing.assert_array_equal(checkpoint.layers[0].b, b0)
    assert "does not record the data split" in check_split(checkpoint.split, iris())


def test_a_split_with_other_settings_is_refused():
    recorded = iris(seed=0).split
    with pytest.raises(SplitMismatchError, match="seed 0, not 1") as error:
        check_split(recorded, iris(seed=1))
    assert "examples it trained on" in str(error.value)
    unscaled = dataclasses.replace(recorded, standardize=False)
    with pytest.raises(SplitMismatchError, match="standardize False, not True"):
        check_split(unscaled, iris(seed=0))


def test_the_same_settings_with_other_test_examples_warn():
    recorded = dataclasses.replace(iris(seed=0).split, test_digest="sha256:" + "0" * 64)
    warning = check_split(recorded, iris(seed=0))
    assert "other test examples" in warning


def test_a_data_set_without_a_split_record_warns():
    data = dataclasses.replace(iris(seed=0), split=None)
    assert "does not record its split" in check_split(iris(seed=0).split, data)


def test_a_diverged_network_is_not_saved(tmp_path):
    layers = init_layers(ARCHITECTURE.sizes, np.random.default_rng(0))
    W = layers[1].W.copy()
    W[2, 1] = np.nan
    layers[1] = tbp.Dense(W, layers[1].b)
    with pytest.raises(
        ValueError,
        match=r"diverged network: 2\.W \(W of layer 2, a Dense\) holds 1 NaN or infinite "
        r"values \(the first at index \(2, 1",
    ):
        save_checkpoint(tmp_path / "net.npz", layers, ARCHITECTURE)
    assert os.listdir(tmp_path) == []


def test_saving_over_a_directory_says_so(tmp_path):
    (tmp_path / "net.npz").mkdir()
    layers = init_layers(ARCHITECTURE.sizes, np.random.default_rng(0))
    with pytest.raises(IsADirectoryError, match="it is a directory"):
        save_checkpoint(tmp_path / "net.npz", layers, ARCHITECTURE)


def unreadable(tmp_path, kind):
    """A file of the given kind, named like a checkpoint."""
    path = tmp_path / "net.npz"
    if kind == "text renamed .npz":
        path.write_text("W0 = [[1, 2], [3, 4]]\n")
    elif kind == ".npy renamed .npz":
        with open(path, "wb") as file:
            np.save(file, np.ones((2, 2)))
    elif kind == "zip of text files":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("notes.txt", "not arrays")
    elif kind == "pickled object":
        np.savez(path, meta=meta(), W0=np.array([{"a": 1}], dtype=object), b0=np.ones(1))
    elif kind == "meta not JSON":
        np.savez(path, meta=np.array("sizes: [2, 1]"), W0=np.ones((1, 2)), b0=np.ones(1))
    elif kind == "NaN weights":
        np.savez(path, meta=meta(), W0=np.array([[1.0, np.nan]]), b0=np.ones(1))
    elif kind == "infinite bias":
        np.savez(path, meta=meta(), W0=np.ones((1, 2)), b0=np.array([-np.inf]))
    elif kind == "1-D weights":
        np.savez(path, meta=meta(), W0=np.ones(2), b0=np.ones(1))
    elif kind == "mixed dtypes":
        np.savez(path, meta=meta(), W0=np.ones((1, 2), np.float32), b0=np.ones(1))
    elif kind == "sizes not numbers":
        np.savez(path, meta=meta(sizes=["two", 1]), W0=np.ones((1, 2)), b0=np.ones(1))
    elif kind == "split record damaged":
        np.savez(
            path,
            meta=meta(format=FORMAT, split={"seed": 1, "colour": "red"}),
            W0=np.ones((1, 2)),
            b0=np.ones(1),
        )
    return path


UNREADABLE = {
    "text renamed .npz": "not a .npz archive",
    ".npy renamed .npz": r"a single NumPy array \(.npy\)",
    "zip of text files": "no 'meta' entry",
    "pickled object": "pickled object, which a checkpoint never does",
    "meta not JSON": "meta entry is not JSON",
    "NaN weights": r"W0 holds 1 NaN or infinite values \(the first at index \(0, 1\)\)",
    "infinite bias": r"b0 holds 1 NaN or infinite values",
    "1-D weights": r"W0 has shape \(2,\) where sizes \[2, 1\] need \(1, 2\)",
    "mixed dtypes": "mix dtypes",
    "sizes not numbers": r"its sizes \['two', 1\] are not whole numbers",
    "split record damaged": "not a data split record",
}


@pytest.mark.parametrize("kind", UNREADABLE)
def test_every_kind_of_unreadable_file_gets_one_line_that_says_what_it_is(tmp_path, kind):
    path = unreadable(tmp_path, kind)
    with pytest.raises(ValueError, match=UNREADABLE[kind]) as error:
        load_checkpoint(path)
    message = str(error.value)
    assert message.startswith(f"{path} is not a readable typedbackprop checkpoint: ")
    assert "\n" not in message and "allow_pickle" not in message


def test_a_directory_is_not_a_missing_file(tmp_path):
    (tmp_path / "net.npz").mkdir()
    with pytest.raises(IsADirectoryError, match="net.npz: it is a directory, not a file"):
        load_checkpoint(tmp_path / "net.npz")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"not a zip file at all", "not a .npz archive"),
        (b"PK\x03\x04 truncated", "damaged .npz archive"),
    ],
    ids=["empty", "text", "truncated zip"],
)
def test_damaged_files_say_so(tmp_path, content, message):
    path = tmp_path / "net.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=f"not a readable typedbackprop checkpoint: .*{message}"):
        load_checkpoint(path)


def test_a_truncated_checkpoint_says_so_in_one_line(tmp_path):
    path = tmp_path / "net.npz"
    save_checkpoint(path, init_layers(ARCHITECTURE.sizes, np.random.default_rng(0)), ARCHITECTURE)
    path.write_bytes(path.read_bytes()[:-200])  # the end of the zip directory is gone
    with pytest.raises(ValueError, match="not a readable typedbackprop checkpoint") as error:
        load_checkpoint(path)
    assert "\n" not in str(error.value)


def test_other_npz_files_are_refused(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, W0=np.ones((2, 2)))
    with pytest.raises(ValueError, match="not a readable typedbackprop checkpoint"):
        load_checkpoint(path)


def meta(**changes):
    fields = {
        "format": "typedbackprop-checkpoint-1",
        "sizes": [2, 1],
        "activation": "sigmoid",
        "output_activation": "identity",
        "loss": "squared_error",
    }
    return np.array(json.dumps(fields | changes))


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"meta": np.array("[1, 2]"), "W0": np.ones((1, 2)), "b0": np.ones(1)}, "describe"),
        ({"meta": meta(format="other-2"), "W0": np.ones((1, 2)), "b0": np.ones(1)}, "other-2"),
        ({"meta": meta(activation="swish"), "W0": np.ones((1, 2)), "b0": np.ones(1)}, "swish"),
        ({"meta": meta(sizes=[2]), "W0": np.ones((1, 2)), "b0": np.ones(1)}, "at least two"),
        ({"meta": meta(), "W0": np.ones((1, 2))}, "b0"),
        ({"meta": meta(), "W0": np.ones((1, 2), int), "b0": np.ones(1, int)}, "floating"),
        ({"meta": meta(), "W0": np.ones((1, 3)), "b0": np.ones(1)}, "do not match"),
    ],
    ids=["meta not a dict", "format", "activation", "sizes", "missing b0", "ints", "shapes"],
)
def test_inconsistent_checkpoints_say_what_is_wrong(tmp_path, arrays, message):
    path = tmp_path / "net.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=message):
        load_checkpoint(path)


def test_the_convnet_round_trips_with_batch_norms_running_statistics(tmp_path):
    from typedbackprop.models import convnet

    rng = np.random.default_rng(0)
    layers = convnet(rng)
    states = tbp.initial_states(layers)
    x = rng.standard_normal((64, 7))
    tbp.network_forward(layers, x, tbp.Mode(training=True), states)  # moves the statistics
    path = tmp_path / "convnet.npz"
    save_network(path, layers, "cross_entropy", model="convnet", states=states)
    checkpoint = read_checkpoint(path)
    assert checkpoint.model == "convnet" and checkpoint.states is not None
    evaluation = tbp.Mode(training=False)
    expected, _ = tbp.network_forward(layers, x, evaluation, states)
    actual, _ = tbp.network_forward(checkpoint.network, x, evaluation, checkpoint.states)
    np.testing.assert_array_equal(actual, expected)
    fresh, _ = tbp.network_forward(layers, x, evaluation, tbp.initial_states(layers))
    assert not np.allclose(fresh, expected), "the statistics moved, so they had to be saved"


def small_transformer(rng, activation="leaky_relu", slope=0.2):
    """embedding (vocab 6, features 4), one block (heads 2, head_dim 3, hidden 5), a dense head."""
    from typedbackprop.models import transformer

    layers = transformer(rng, vocab=6, context=7, features=4, heads=2, hidden=5, answer=3)
    return [with_feedforward(layer, activation=activation, slope=slope) for layer in layers]


def with_feedforward(layer, **settings):
    """A block with its feed-forward network's ``settings`` changed; another layer as it is."""
    if not isinstance(layer, tbp.nn.TransformerBlock):
        return layer
    return dataclasses.replace(
        layer, feedforward=dataclasses.replace(layer.feedforward, **settings)
    )


def test_a_leaky_relu_slope_of_the_feed_forward_network_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    layers = small_transformer(rng, slope=0.2)
    ids = rng.integers(0, 6, size=(7, 5))  # seq=7, batch=5
    path = tmp_path / "transformer.npz"
    save_network(path, layers, "token_cross_entropy", model="transformer")
    with np.load(path, allow_pickle=False) as archive:
        record = json.loads(str(archive["meta"]))["layers"][2]
    assert record["type"] == "TransformerBlock"
    assert record["records"]["feedforward"]["type"] == "FeedForward"
    assert record["records"]["feedforward"]["settings"]["activation"] == "leaky_relu"
    assert record["records"]["feedforward"]["settings"]["slope"] == 0.2
    loaded = read_checkpoint(path).network
    assert loaded[2].feedforward.slope == 0.2
    expected, _ = tbp.network_forward(layers, ids)
    np.testing.assert_array_equal(tbp.network_forward(loaded, ids)[0], expected)
    # The slope is read: the same parameters with the default slope compute something else.
    default = [with_feedforward(layer, slope=0.01) for layer in loaded]
    assert not np.allclose(tbp.network_forward(default, ids)[0], expected)


def test_a_checkpoint_written_before_the_slope_was_a_setting_loads_with_the_default(tmp_path):
    rng = np.random.default_rng(1)
    layers = small_transformer(rng, slope=0.01)
    path = tmp_path / "old.npz"
    save_network(path, layers, "token_cross_entropy", model="transformer")
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    record = json.loads(str(arrays["meta"]))
    # as the files written before it was a setting
    del record["layers"][2]["records"]["feedforward"]["settings"]["slope"]
    arrays["meta"] = np.array(json.dumps(record))
    np.savez(path, **arrays)
    loaded = read_checkpoint(path).network
    assert (loaded[2].feedforward.activation, loaded[2].feedforward.slope) == ("leaky_relu", 0.01)
    ids = rng.integers(0, 6, size=(7, 5))
    np.testing.assert_array_equal(
        tbp.network_forward(loaded, ids)[0], tbp.network_forward(layers, ids)[0]
    )


FLAT_BLOCK_FIELDS = {
    "attention_norm": {"gamma": "attention_norm_gain", "beta": "attention_norm_bias"},
    "attention": {
        name: name
        for name in ("W_query", "b_query", "W_key", "W_value", "b_value", "W_output", "b_output")
    },
    "feedforward_norm": {"gamma": "feedforward_norm_gain", "beta": "feedforward_norm_bias"},
    "feedforward": {name: name for name in ("W_up", "b_up", "W_down", "b_down")},
}
"""The transformer block as files held it before it was made of layers: one record of 15 arrays,
by its part and field now."""


def write_flat_block_file(path, layers, settings):
    """``layers`` saved as the writer did before the block was made of layers: the block's entry
    a ``TransformerBlock`` with ``settings`` and no records, its 15 arrays at its top level
    (``2.attention_norm_gain``, ``2.W_query``), each other layer as the writer writes it now."""
    save_network(path, layers, "token_cross_entropy", model="transformer")
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    meta = json.loads(str(arrays["meta"]))
    for index, layer in enumerate(layers):
        if not isinstance(layer, tbp.nn.TransformerBlock):
            continue
        meta["layers"][index] = {"type": "TransformerBlock", "settings": settings, "records": {}}
        for part, fields in FLAT_BLOCK_FIELDS.items():
            for field, old in fields.items():
                arrays[f"{index}.{old}"] = arrays.pop(f"{index}.{part}.{field}")
    assert "2.W_query" in arrays and not any(name.startswith("2.attention.") for name in arrays)
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)


def test_a_checkpoint_of_the_flat_transformer_block_loads_as_the_block_of_its_parts(tmp_path):
    # The settings as the flat block held them: causal, the activation, one eps for both layer
    # norms, the slope. Each reaches its part; the network computes what it computed.
    rng = np.random.default_rng(2)
    layers = [
        dataclasses.replace(
            layer,
            attention_norm=dataclasses.replace(layer.attention_norm, eps=1e-3),
            feedforward_norm=dataclasses.replace(layer.feedforward_norm, eps=1e-3),
        )
        if isinstance(layer, tbp.nn.TransformerBlock)
        else layer
        for layer in small_transformer(rng, activation="leaky_relu", slope=0.2)
    ]
    path = tmp_path / "flat.npz"
    settings = {"causal": True, "activation": "leaky_relu", "eps": 1e-3, "slope": 0.2}
    write_flat_block_file(path, layers, settings)
    loaded = read_checkpoint(path).network
    block = loaded[2]
    assert type(block) is tbp.nn.TransformerBlock and type(block.attention) is tbp.nn.Attention
    assert block.attention.causal and block.attention_norm.eps == block.feedforward_norm.eps == 1e-3
    assert (block.feedforward.activation, block.feedforward.slope) == ("leaky_relu", 0.2)
    for path_in_block, value in leaves(layers[2]).items():
        np.testing.assert_array_equal(leaves(block)[path_in_block], value, err_msg=path_in_block)
    ids = rng.integers(0, 6, size=(7, 5))
    np.testing.assert_array_equal(
        tbp.network_forward(loaded, ids)[0], tbp.network_forward(layers, ids)[0]
    )


def test_a_checkpoint_with_the_layer_norms_old_gain_and_bias_loads_them_as_gamma_and_beta(
    tmp_path,
):
    # Layer norm's scale and shift were `gain` and `bias` before they were batch norm's `gamma`
    # and `beta`: a file of then holds 4.gain (the final norm) and 2.attention_norm.gain.
    rng = np.random.default_rng(4)
    layers = small_transformer(rng)
    path = tmp_path / "old_names.npz"
    save_network(path, layers, "token_cross_entropy", model="transformer")
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    old = {".gamma": ".gain", ".beta": ".bias"}
    renamed = {}
    for name, array in arrays.items():
        suffix = next((new for new in old if name.endswith(new)), None)
        renamed[name.removesuffix(suffix) + old[suffix] if suffix else name] = array
    assert {"2.attention_norm.gain", "2.feedforward_norm.bias"} <= set(renamed)
    top_norms = [i for i, layer in enumerate(layers) if isinstance(layer, tbp.nn.LayerNorm)]
    assert top_norms and all(f"{i}.gain" in renamed for i in top_norms)
    assert not any(name.endswith((".gamma", ".beta")) for name in renamed)
    np.savez(path, **renamed)
    loaded = read_checkpoint(path).network
    for layer, back in zip(layers, loaded, strict=True):
        assert type(back) is type(layer)
        assert leaves(back).keys() == leaves(layer).keys()
        for name, value in leaves(layer).items():
            np.testing.assert_array_equal(leaves(back)[name], value, err_msg=name)
    ids = rng.integers(0, 6, size=(7, 5))
    np.testing.assert_array_equal(
        tbp.network_forward(loaded, ids)[0], tbp.network_forward(layers, ids)[0]
    )


def test_a_flat_transformer_block_missing_an_array_is_refused_in_one_line(tmp_path):
    layers = small_transformer(np.random.default_rng(3))
    path = tmp_path / "flat.npz"
    write_flat_block_file(path, layers, {"causal": True, "activation": "gelu", "eps": 1e-5})
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files if name != "2.W_key"}
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=r"layer 2\.attention: .*W_key") as error:
        read_checkpoint(path)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("argv", "dataset"),
    [
        (["--dataset", "iris", "--epochs", "2"], "iris"),
        (["--model", "convnet", "--epochs", "1"], "digits"),
        (["--model", "transformer", "--steps", "2"], "sort"),
    ],
)
def test_every_model_the_command_line_saves_reads_back_with_the_public_api(argv, dataset, tmp_path):
    import io

    from rich.console import Console

    from typedbackprop.cli import main
    from typedbackprop.recipes import RECIPES, recipe_data
    from typedbackprop.training import evaluate_network

    path = tmp_path / "net.npz"
    out = io.StringIO()
    console = Console(file=out, width=200, force_terminal=False, color_system=None)
    assert main(["train", *argv, "--save", str(path)], console=console) == 0, out.getvalue()
    printed = out.getvalue().split("test loss ")[1].split()[0]
    assert "read_checkpoint" in tbp.__all__
    checkpoint = tbp.read_checkpoint(path)
    assert checkpoint.split is not None and checkpoint.split.dataset == dataset
    if checkpoint.model is None:  # the perceptron: also its shorthand, load_checkpoint
        layers, architecture = tbp.load_checkpoint(path)
        assert checkpoint.architecture == architecture
        for mine, read in zip(layers, checkpoint.layers, strict=True):
            np.testing.assert_array_equal(mine.W, read.W)
        data = tbp.load_dataset(dataset, seed=checkpoint.split.seed)
    else:
        assert checkpoint.model == argv[1] and checkpoint.loss == RECIPES[argv[1]].loss
        data = recipe_data(RECIPES[argv[1]], seed=checkpoint.split.seed)
    loss, _ = evaluate_network(
        checkpoint.network, checkpoint.loss, data.x_test, data.y_test, checkpoint.states
    )
    assert f"{loss:.4g}" == printed  # the network the command trained, whole
