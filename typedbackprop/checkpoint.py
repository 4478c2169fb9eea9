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

from typedbackprop.models import Architecture
from typedbackprop.nn.network import Dense

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
    FileNotFoundError
        If the directory of ``path`` does not exist.

    Notes
    -----
    The arrays go to a temporary file in the same directory, which is flushed and ``fsync``-ed,
    then renamed over ``path`` with ``os.replace`` (atomic), and the directory is ``fsync``-ed
    so that the rename itself survives a crash. Readers see the old file or the new one, whole.
    """
    shapes = [layer.W.shape for layer in layers]
    expected = list(zip(architecture.sizes[1:], architecture.sizes[:-1], strict=True))
    if shapes != expected:
        raise ValueError(f"layer shapes {shapes} do not match sizes {architecture.sizes}")
    target = Path(path)
    if not target.parent.is_dir():
        raise FileNotFoundError(f"cannot save {target}: there is no directory {target.parent}")
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
    # The temporary file lives in the target's directory: os.replace is atomic only within
    # one file system.
    handle, temporary = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, **arrays)  # type: ignore[arg-type]
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes it private; use the usual mode
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_directory(target.parent)


def _umask() -> int:
    """The process's file-creation mask (reading it means setting it, so set it back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_directory(directory: Path) -> None:
    """Flush the rename itself to disk, where the system allows opening a directory."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:  # Windows cannot open a directory; its rename is durable enough
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


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
    if not Path(path).is_file():
        raise FileNotFoundError(f"no checkpoint at {path}: there is no such file")
    with open(path, "rb") as file:
        try:
            with np.load(file, allow_pickle=False) as archive:
                meta = json.loads(str(archive["meta"]))
                if not isinstance(meta, dict):
                    raise ValueError("its meta entry does not describe an architecture")
                if meta.get("format") != FORMAT:
                    raise ValueError(f"format {meta.get('format')!r}, not {FORMAT!r}")
                architecture = Architecture(
                    tuple(int(size) for size in meta["sizes"]),
                    meta["activation"],
                    meta["output_activation"],
                    meta["loss"],
                )
                arrays = [
                    (archive[f"W{index}"], archive[f"b{index}"])
                    for index in range(len(architecture.sizes) - 1)
                ]
                if any(array.dtype.kind != "f" for pair in arrays for array in pair):
                    raise ValueError("parameters must be floating point")
                layers = [Dense(W, b) for W, b in arrays]
        except (
            AttributeError,
            EOFError,
            KeyError,
            OSError,
            TypeError,
            ValueError,
            zipfile.BadZipFile,
        ) as error:
            raise ValueError(
                f"{path} is not a readable typedbackprop checkpoint: {error}"
            ) from error
    expected = list(zip(architecture.sizes[1:], architecture.sizes[:-1], strict=True))
    if [layer.W.shape for layer in layers] != expected:
        raise ValueError(f"{path}: layer shapes do not match sizes {architecture.sizes}")
    return layers, architecture
