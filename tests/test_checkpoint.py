"""Tests for typedbackprop.checkpoint: round trip, atomic writes, damaged files."""

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
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "absent.npz")


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
