"""Tests for typedbackprop.checkpoint: round trip, atomic writes, damaged files."""

import json
import os

import numpy as np
import pytest

import typedbackprop as tbp
from typedbackprop.checkpoint import load_checkpoint, save_checkpoint
from typedbackprop.initialize import init_layers
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


def test_the_file_is_a_plain_npz_with_the_architecture(tmp_path):
    path = tmp_path / "net.npz"
    save_checkpoint(path, init_layers(ARCHITECTURE.sizes, np.random.default_rng(0)), ARCHITECTURE)
    with np.load(path, allow_pickle=False) as archive:  # no pickles: safe to open
        assert sorted(archive.files) == ["W0", "W1", "b0", "b1", "meta"]
        meta = json.loads(str(archive["meta"]))
    assert meta == {
        "format": "typedbackprop-checkpoint-1",
        "sizes": [4, 5, 3],
        "activation": "tanh",
        "output_activation": "softmax",
        "loss": "cross_entropy",
    }


@pytest.mark.parametrize(
    "content",
    [b"", b"not a zip file at all", b"PK\x03\x04 truncated"],
    ids=["empty", "text", "truncated zip"],
)
def test_damaged_files_say_so(tmp_path, content):
    path = tmp_path / "net.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not a readable typedbackprop checkpoint"):
        load_checkpoint(path)


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
