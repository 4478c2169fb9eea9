"""Save and load a network's parameters with its architecture, atomically.

A checkpoint is a NumPy ``.npz`` file holding ``W0, b0, W1, b1, ...`` and a JSON description of
the architecture. It is written to a temporary file in the same directory, flushed to disk and
then renamed over the target, so an interrupted save leaves the old file or none, never a
truncated one.
"""

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from typedbackprop.network import Dense, check_names
from typedbackprop.training import Architecture

__all__ = ["save_checkpoint", "load_checkpoint", "FORMAT"]

FORMAT = "typedbackprop-checkpoint-1"


def save_checkpoint(
    path: str | os.PathLike[str], layers: list[Dense], architecture: Architecture
) -> None:
    """Write ``layers`` and ``architecture`` to ``path`` atomically.

    Parameters
    ----------
    path
        The file to write (by convention ``.npz``); its directory must exist.
    layers
        The parameters.
    architecture
        The sizes, activations and loss that go with them.

    Raises
    ------
    ValueError
        If the layer shapes do not match ``architecture.sizes``.
    """
    shapes = [layer.W.shape for layer in layers]
    expected = list(zip(architecture.sizes[1:], architecture.sizes[:-1], strict=True))
    if shapes != expected:
        raise ValueError(f"layer shapes {shapes} do not match sizes {architecture.sizes}")
    target = Path(path)
    meta = {
        "format": FORMAT,
        "sizes": list(architecture.sizes),
        "activation": architecture.activation,
        "output_activation": architecture.output_activation,
        "loss": architecture.loss,
    }
    arrays = {"meta": np.array(json.dumps(meta))}
    for index, layer in enumerate(layers):
        arrays[f"W{index}"] = layer.W
        arrays[f"b{index}"] = layer.b
    handle, temporary = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, **arrays)  # type: ignore[arg-type]
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[list[Dense], Architecture]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Parameters
    ----------
    path
        The checkpoint file.

    Returns
    -------
    layers, architecture
        Bit-identical parameters, and the architecture they belong to.

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    ValueError
        If the file is not a typedbackprop checkpoint, or is damaged.
    """
    with open(path, "rb") as file:  # FileNotFoundError passes through as it is
        try:
            with np.load(file, allow_pickle=False) as archive:
                meta = json.loads(str(archive["meta"]))
                if meta.get("format") != FORMAT:
                    raise ValueError(f"format {meta.get('format')!r}, not {FORMAT!r}")
                architecture = Architecture(
                    tuple(int(size) for size in meta["sizes"]),
                    meta["activation"],
                    meta["output_activation"],
                    meta["loss"],
                )
                check_names(
                    architecture.activation, architecture.output_activation, architecture.loss
                )
                layers = [
                    Dense(archive[f"W{index}"], archive[f"b{index}"])
                    for index in range(len(architecture.sizes) - 1)
                ]
        except (EOFError, KeyError, OSError, TypeError, ValueError, zipfile.BadZipFile) as error:
            raise ValueError(
                f"{path} is not a readable typedbackprop checkpoint: {error}"
            ) from error
    expected = list(zip(architecture.sizes[1:], architecture.sizes[:-1], strict=True))
    if [layer.W.shape for layer in layers] != expected:
        raise ValueError(f"{path}: layer shapes do not match sizes {architecture.sizes}")
    return layers, architecture
