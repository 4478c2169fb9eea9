"""Save and load a network's parameters with its architecture and data split, atomically.

A checkpoint is a NumPy ``.npz`` file holding ``W0, b0, W1, b1, ...`` and a JSON dict,
``meta``: the format and its version, the architecture, and the record of the train/test split
the network was trained on (so that it is tested later on the same held-out examples). It is
written to a temporary file in the same directory, flushed to disk and then renamed over the
target, so an interrupted save leaves the old file or none, never a truncated one.

Format versions: ``typedbackprop-checkpoint-1`` has no split record; version 2 adds ``split``;
version 3 holds any network: each layer's family and settings in ``meta["layers"]`` and its
arrays as ``<index>.<field>`` (``0.W``, ``0.b``), so that any sequence of layers round-trips.
All three are read.
"""

import dataclasses
import json
import os
import sys
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np
from numpy.typing import NDArray

from typedbackprop.datasets import SplitRecord
from typedbackprop.models import Architecture
from typedbackprop.nn.families import FAMILIES, family_of
from typedbackprop.nn.network import Dense, Layer, mlp
from typedbackprop.nn.transformer import TransformerBlock

__all__ = [
    "FORMAT",
    "FORMAT_VERSIONS",
    "Checkpoint",
    "SplitData",
    "SplitMismatchError",
    "save_checkpoint",
    "save_network",
    "read_checkpoint",
    "load_checkpoint",
    "check_split",
]

FORMAT = "typedbackprop-checkpoint-3"
"""The format :func:`save_checkpoint` writes, as ``meta["format"]``."""

FORMAT_VERSIONS: dict[str, int] = {
    "typedbackprop-checkpoint-1": 1,
    "typedbackprop-checkpoint-2": 2,
    "typedbackprop-checkpoint-3": 3,
}
"""Every format :func:`read_checkpoint` reads, and its version number."""

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK"


class SplitData(Protocol):
    """Data that records its split: a :class:`~typedbackprop.datasets.Dataset`, or a recipe's
    :class:`~typedbackprop.recipes.RecipeData`."""

    @property
    def name(self) -> str:
        """The data set's name."""
        ...

    @property
    def split(self) -> SplitRecord | None:
        """How its examples were split (``None``: not recorded)."""
        ...


class SplitMismatchError(ValueError):
    """A checkpoint meets data split differently from the data it was trained and tested on."""


@dataclass(frozen=True)
class Checkpoint:
    """What a checkpoint file holds.

    Parameters
    ----------
    layers
        The dense layers of a multilayer perceptron (empty for another network).
    architecture
        The sizes, activations and loss of a multilayer perceptron; ``None`` for another
        network.
    split
        The train/test split the network was trained on, or ``None`` when the file does not
        record one (format version 1, or saved without it).
    version
        The file's format version (see :data:`FORMAT_VERSIONS`).
    network
        Every layer, of any family (a perceptron's ``Dense`` and ``Activation`` layers).
    loss
        The loss the network was trained with.
    model
        The name of the model the network was built as (``"convnet"``), if one was recorded.
    states
        The layers' state (batch norm's running statistics), if it was saved.
    """

    layers: list[Dense]
    architecture: Architecture | None
    split: SplitRecord | None
    version: int
    network: list[Layer] = dataclasses.field(default_factory=list)
    loss: str = ""
    model: str | None = None
    states: list[Any] | None = None


def save_checkpoint(
    path: str | os.PathLike[str],
    layers: list[Dense],
    architecture: Architecture,
    split: SplitRecord | None = None,
) -> None:
    """Write ``layers``, ``architecture`` and the data ``split`` to ``path`` atomically.

    Parameters
    ----------
    path
        The file to write (by convention ``.npz``); its directory must exist.
    layers
        The parameters.
    architecture
        The sizes, activations and loss that go with them.
    split
        The train/test split the network was trained on (``data.split``), so that a later
        evaluation can use the same test examples; ``None`` records none.

    Raises
    ------
    ValueError
        If the layer shapes do not match ``architecture.sizes``, or a parameter is NaN or
        infinite (a diverged network is not worth keeping).
    FileNotFoundError
        If the directory of ``path`` does not exist.
    IsADirectoryError
        If ``path`` is a directory.

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
    save_network(
        path,
        mlp(layers, architecture.activation, architecture.output_activation),
        architecture.loss,
        split=split,
        architecture=architecture,
    )


def save_network(
    path: str | os.PathLike[str],
    layers: list[Layer],
    loss: str,
    *,
    split: SplitRecord | None = None,
    model: str | None = None,
    architecture: Architecture | None = None,
    states: list[Any] | None = None,
) -> None:
    """Write any sequence of layers, with its loss and data split, to ``path`` atomically.

    Parameters
    ----------
    path
        The file to write (by convention ``.npz``); its directory must exist.
    layers
        Layers of any family in :data:`~typedbackprop.nn.families.FAMILIES`.
    loss
        The loss the network is trained with.
    split
        The train/test split it was trained on (``data.split``).
    model
        The name of the model it was built as, for the command line's ``--load``.
    architecture
        For a multilayer perceptron, its sizes and activation names (also recorded).
    states
        The layers' state, one entry per layer (batch norm's running statistics; ``None`` for
        a layer without), as :func:`~typedbackprop.nn.network.initial_states` makes it.

    Raises
    ------
    ValueError
        If a parameter is NaN or infinite, or a setting cannot be written as JSON.
    TypeError
        If a layer is of no known family.
    FileNotFoundError, IsADirectoryError
        As for :func:`save_checkpoint`.
    """
    arrays: dict[str, NDArray[Any]] = {}
    encoded = [_encode(layer, str(index), arrays) for index, layer in enumerate(layers)]
    if states is not None and len(states) != len(layers):
        raise ValueError(f"{len(states)} states for {len(layers)} layers")
    encoded_states = [
        None if state is None else _encode(state, f"states.{index}", arrays)
        for index, state in enumerate(states or [])
    ]
    for name, array in arrays.items():
        if not np.isfinite(array).all():
            index, _, field = name.removeprefix("states.").partition(".")
            kind = type(layers[int(index)]).__name__
            raise ValueError(
                f"refusing to save a diverged network: {name} ({field} of layer {index}, a "
                f"{kind}) {_non_finite(array)}"
            )
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(f"cannot save {target}: it is a directory")
    if not target.parent.is_dir():
        raise FileNotFoundError(f"cannot save {target}: there is no directory {target.parent}")
    meta = _meta(architecture, split) | {"loss": loss, "layers": encoded, "model": model}
    if states is not None:
        meta["states"] = encoded_states
    arrays["meta"] = np.array(json.dumps(meta))
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


def _meta(architecture: Architecture | None, split: SplitRecord | None) -> dict[str, Any]:
    """The JSON dict a checkpoint stores beside its arrays."""
    meta: dict[str, Any] = {"format": FORMAT}
    if architecture is not None:
        meta |= {
            "sizes": list(architecture.sizes),
            "activation": architecture.activation,
            "output_activation": architecture.output_activation,
            "loss": architecture.loss,
        }
    if split is not None:
        meta["split"] = dataclasses.asdict(split)
    return meta


_MERGED_RECORDS: dict[str, str] = {
    "Activation2d": "Activation",
    "BatchNorm2d": "BatchNorm",
    "BatchNorm2dState": "BatchNormState",
}
"""Record types a checkpoint may name that have since merged into another family, by their old
name: an image activation is :class:`~typedbackprop.nn.activations.Activation` over
``" features *positions batch"``, spatial batch norm :class:`~typedbackprop.nn.batchnorm.BatchNorm`
over ``"channels *spatial batch"`` (its running statistics a ``BatchNormState``), each with the
same fields, so an old file loads as the new record."""


_RENAMED_FIELDS: dict[str, dict[str, str]] = {
    "LayerNorm": {"gamma": "gain", "beta": "bias"},
}
"""Fields a record type has renamed, by the record's type: ``{new field: old field}``. Layer
norm's scale and shift were ``gain`` and ``bias`` before the normalizations shared batch norm's
``gamma`` and ``beta``; a file that holds the old names (``3.gain``, or
``2.attention_norm.gain`` in a transformer block) loads them as the new."""


def _record_types() -> dict[str, type]:
    """Every record type a checkpoint may name: the families', the records they hold, and the
    state records their modules define (batch norm's running statistics)."""
    found: dict[str, type] = {}
    pending = list(FAMILIES)
    for kind in FAMILIES:
        module = sys.modules[kind.__module__]
        pending += [
            value
            for value in vars(module).values()
            if isinstance(value, type)
            and dataclasses.is_dataclass(value)
            and value.__module__ == module.__name__
        ]
    while pending:
        kind = pending.pop()
        if kind.__name__ in found:
            continue
        found[kind.__name__] = kind
        for field in dataclasses.fields(kind):
            for hint in (field.type, *getattr(field.type, "__args__", ())):
                if isinstance(hint, type) and dataclasses.is_dataclass(hint):
                    pending.append(hint)
    return found | {old: found[new] for old, new in _MERGED_RECORDS.items()}


def _encode(record: Any, path: str, arrays: dict[str, NDArray[Any]]) -> dict[str, Any]:
    """``{"type", "settings", "records"}`` of a record; its arrays go to ``arrays[path.field]``."""
    if "." not in path:
        family_of(record)  # a top-level layer must belong to a family
    entry: dict[str, Any] = {"type": type(record).__name__, "settings": {}, "records": {}}
    for field in dataclasses.fields(record):
        value = getattr(record, field.name)
        where = f"{path}.{field.name}"
        if isinstance(value, np.ndarray):
            arrays[where] = value
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            entry["records"][field.name] = _encode(value, where, arrays)
        elif isinstance(value, str | int | float | bool | tuple | type(None)):
            entry["settings"][field.name] = value
        else:
            raise ValueError(f"cannot save {where}: a {type(value).__name__} is not a setting")
    return entry


_FLAT_BLOCK: dict[str, tuple[str, dict[str, str], dict[str, str]]] = {
    "attention_norm": (
        "LayerNorm",
        {"gamma": "attention_norm_gain", "beta": "attention_norm_bias"},
        {"eps": "eps"},
    ),
    "attention": (
        "Attention",
        {name: name for name in "W_query b_query W_key W_value b_value W_output b_output".split()},
        {"causal": "causal"},
    ),
    "feedforward_norm": (
        "LayerNorm",
        {"gamma": "feedforward_norm_gain", "beta": "feedforward_norm_bias"},
        {"eps": "eps"},
    ),
    "feedforward": (
        "FeedForward",
        {name: name for name in "W_up b_up W_down b_down".split()},
        {"activation": "activation", "slope": "slope"},
    ),
}
"""Where the flat transformer block of earlier files kept each part's arrays and settings: by
part, its record type, ``{field: old array field}`` and ``{field: old setting}``. That block
was one record of 15 arrays (``attention_norm_gain``, ``W_query``, ...) and four settings
(``causal``, ``activation``, ``eps`` for both layer norms, ``slope``); it is now made of its
parts' records."""


class _Renamed:
    """An archive whose arrays are also read by other names: ``archive[renames[name]]``."""

    def __init__(self, archive: Any, renames: dict[str, str]) -> None:
        self.archive, self.renames = archive, renames

    def __getitem__(self, name: str) -> Any:
        return self.archive[self.renames.get(name, name)]


def _from_flat_block(
    entry: dict[str, Any], path: str, archive: Any, files: set[str]
) -> tuple[dict[str, Any], Any, set[str]]:
    """The entry of a flat transformer block (see :data:`_FLAT_BLOCK`) as its parts' records,
    and the archive with its arrays also under the parts' paths (``0.attention.W_query`` read
    from ``0.W_query``)."""
    settings = entry.get("settings", {})
    if not isinstance(settings, dict):
        raise _Unreadable(f"layer {path}: its settings are not a dict")
    settings = {"causal": True} | settings  # the flat block was causal by default
    records: dict[str, Any] = {}
    renames: dict[str, str] = {}
    for part, (kind, arrays, part_settings) in _FLAT_BLOCK.items():
        records[part] = {
            "type": kind,
            "settings": {
                new: settings[old] for new, old in part_settings.items() if old in settings
            },
            "records": {},
        }
        renames |= {f"{path}.{part}.{new}": f"{path}.{old}" for new, old in arrays.items()}
    found = {new for new, old in renames.items() if old in files}
    return (
        {"type": entry["type"], "settings": {}, "records": records},
        _Renamed(archive, renames),
        files | found,
    )


def _decode(entry: object, path: str, archive: Any, files: set[str]) -> Any:
    """The record ``_encode`` wrote at ``path``, every array present, finite and float.

    A setting the file does not hold takes the record's default: a file written before the
    setting existed (a feed-forward network's ``slope``, 0.01) loads as it was computed then.
    A transformer block written flat, before it was made of its parts' records, loads as the
    block of those parts; a field since renamed (a layer norm's ``gain``, see
    :data:`_RENAMED_FIELDS`) loads under its new name.
    """
    types = _record_types()
    if not isinstance(entry, dict) or entry.get("type") not in types:
        raise _Unreadable(f"layer {path} is of no known family ({entry!r:.60})")
    if types[entry["type"]] is TransformerBlock and not entry.get("records"):
        entry, archive, files = _from_flat_block(entry, path, archive, files)
    kind = types[entry["type"]]
    renames = {
        f"{path}.{new}": f"{path}.{old}"
        for new, old in _RENAMED_FIELDS.get(kind.__name__, {}).items()
        if f"{path}.{new}" not in files and f"{path}.{old}" in files
    }
    if renames:
        archive, files = _Renamed(archive, renames), files | set(renames)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(kind):
        where = f"{path}.{field.name}"
        if field.name in entry.get("records", {}):
            values[field.name] = _decode(entry["records"][field.name], where, archive, files)
        elif field.name in entry.get("settings", {}):
            value = entry["settings"][field.name]
            values[field.name] = tuple(value) if isinstance(value, list) else value
        elif where in files:
            array = cast(NDArray[Any], archive[where])
            if array.dtype.kind != "f":
                raise _Unreadable(f"{where} is {array.dtype}: parameters must be floating point")
            if not np.isfinite(array).all():
                raise _Unreadable(f"{where} {_non_finite(array)}")
            values[field.name] = array
    try:
        return kind(**values)
    except (TypeError, ValueError) as error:
        raise _Unreadable(f"layer {path}: {_one_line(error)}") from None


def _non_finite(array: NDArray[Any]) -> str:
    """``"holds 3 NaN or infinite values (the first at index (0, 2))"``."""
    bad = np.argwhere(~np.isfinite(array))
    first = tuple(int(index) for index in bad[0])
    return f"holds {len(bad)} NaN or infinite values (the first at index {first})"


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


class _Unreadable(Exception):
    """Why a file is not a checkpoint; becomes the one-line ``ValueError`` of the loader."""


def read_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a checkpoint of any network: :func:`save_checkpoint`'s or :func:`save_network`'s.

    Every model the command line saves (``train --save``, whatever its ``--model``) reads back
    with this function, as ``typedbackprop.read_checkpoint``; :func:`load_checkpoint` is the
    perceptron's shorthand.

    Parameters
    ----------
    path
        The checkpoint file (any format version this package has written).

    Returns
    -------
    Checkpoint
        Bit-identical parameters (:attr:`Checkpoint.network`, every layer; for a perceptron
        also :attr:`~Checkpoint.layers` and its :attr:`~Checkpoint.architecture`), its loss,
        model name and state, and the data split it was trained on where the file records it.

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    IsADirectoryError
        If ``path`` is a directory.
    ValueError
        If the file is not a typedbackprop checkpoint, or is damaged: one line that says
        what is wrong (empty, a lone ``.npy`` array, not an archive, a pickled object, NaN
        parameters, shapes that do not match the sizes, ...).
    """
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(f"no checkpoint at {path}: it is a directory, not a file")
    if not target.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}: there is no such file")
    try:
        with open(target, "rb") as file:
            _check_magic(file.read(len(_NPY_MAGIC)))
            file.seek(0)
            with np.load(file, allow_pickle=False) as archive:
                return _parse(archive)
    except _Unreadable as error:
        reason = str(error)
    except ValueError as error:
        reason = _one_line(error)
        if "allow_pickle" in reason:  # never advise unpickling a file of unknown origin
            reason = "it holds a pickled object, which a checkpoint never does (not loaded)"
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        reason = f"a damaged .npz archive ({_one_line(error)})"
    except (AttributeError, KeyError, OSError, TypeError) as error:
        reason = _one_line(error)
    raise ValueError(f"{path} is not a readable typedbackprop checkpoint: {reason}")


def _one_line(error: BaseException) -> str:
    """The error's message on one line (the first line, whitespace collapsed)."""
    lines = str(error).strip().splitlines() or [type(error).__name__]
    return " ".join(lines[0].split())


def _check_magic(head: bytes) -> None:
    if not head:
        raise _Unreadable("the file is empty")
    if head.startswith(_NPY_MAGIC):
        raise _Unreadable("it is a single NumPy array (.npy), not a .npz archive of arrays")
    if not head.startswith(_ZIP_MAGIC):
        raise _Unreadable("it is not a .npz archive (a zip file of arrays)")


def _parse(archive: Any) -> Checkpoint:
    """The checkpoint in an open ``.npz`` archive, every entry checked."""
    files = set(archive.files)
    if "meta" not in files:
        raise _Unreadable("it has no 'meta' entry (an .npz of other arrays?)")
    try:
        meta = json.loads(str(archive["meta"]))
    except json.JSONDecodeError:
        raise _Unreadable("its meta entry is not JSON") from None
    if not isinstance(meta, dict):
        raise _Unreadable("its meta entry does not describe an architecture")
    version = FORMAT_VERSIONS.get(meta.get("format"))  # type: ignore[arg-type]
    if version is None:
        known = ", ".join(FORMAT_VERSIONS)
        raise _Unreadable(f"format {meta.get('format')!r}, not one of {known}")
    if version >= 3 and "sizes" not in meta:  # a network other than a perceptron
        return _parse_network(meta, archive, files, _parse_split(meta.get("split")))
    try:
        sizes = tuple(int(size) for size in meta["sizes"])
    except KeyError:
        raise _Unreadable("its meta entry has no 'sizes'") from None
    except (TypeError, ValueError):
        raise _Unreadable(f"its sizes {meta['sizes']!r} are not whole numbers") from None
    try:
        architecture = Architecture(
            sizes,
            meta["activation"],
            meta["output_activation"],
            meta["loss"],
        )
    except KeyError as error:
        raise _Unreadable(f"its meta entry has no {error}") from None
    except (TypeError, ValueError) as error:
        raise _Unreadable(_one_line(error)) from None
    split = _parse_split(meta.get("split")) if version >= 2 else None
    if version >= 3:
        return _parse_network(meta, archive, files, split)
    layers = [
        _layer(archive, files, architecture, index) for index in range(len(architecture.sizes) - 1)
    ]
    dtypes = {array.dtype for layer in layers for array in (layer.W, layer.b)}
    if len(dtypes) > 1:
        names = ", ".join(sorted(str(dtype) for dtype in dtypes))
        raise _Unreadable(f"its parameters mix dtypes ({names}); a network computes in one")
    network = mlp(layers, architecture.activation, architecture.output_activation)
    return Checkpoint(layers, architecture, split, version, network, architecture.loss, None)


def _parse_network(
    meta: dict[str, Any], archive: Any, files: set[str], split: SplitRecord | None
) -> Checkpoint:
    """A version-3 checkpoint: any layers; a perceptron's also as ``Dense`` + ``Architecture``."""
    entries = meta.get("layers")
    if not isinstance(entries, list) or not entries:
        raise _Unreadable("its meta entry lists no layers")
    network = [_decode(entry, str(index), archive, files) for index, entry in enumerate(entries)]
    loss = meta.get("loss")
    if not isinstance(loss, str):
        raise _Unreadable("its meta entry names no loss")
    arrays = [array for layer in network for array in _arrays_of(layer)]
    if len({array.dtype for array in arrays}) > 1:
        names = ", ".join(sorted({str(array.dtype) for array in arrays}))
        raise _Unreadable(f"its parameters mix dtypes ({names}); a network computes in one")
    model = meta.get("model")
    states = _decode_states(meta.get("states"), len(network), archive, files)
    if "sizes" not in meta:
        name = model if isinstance(model, str) else None
        return Checkpoint([], None, split, 3, network, loss, name, states)
    try:
        architecture = Architecture(
            tuple(int(size) for size in meta["sizes"]),
            meta["activation"],
            meta["output_activation"],
            meta["loss"],
        )
    except (KeyError, TypeError, ValueError) as error:
        raise _Unreadable(f"its perceptron description is damaged ({_one_line(error)})") from None
    dense = [layer for layer in network if isinstance(layer, Dense)]
    if network != mlp(dense, architecture.activation, architecture.output_activation):
        raise _Unreadable("its layers are not the perceptron its sizes and activations describe")
    expected = list(zip(architecture.sizes[1:], architecture.sizes[:-1], strict=True))
    if [layer.W.shape for layer in dense] != expected:
        raise _Unreadable(f"its layer shapes do not match the sizes {list(architecture.sizes)}")
    return Checkpoint(dense, architecture, split, 3, network, loss, None)


def _decode_states(entries: object, count: int, archive: Any, files: set[str]) -> list[Any] | None:
    if entries is None:
        return None
    if not isinstance(entries, list) or len(entries) != count:
        raise _Unreadable("its states entry does not hold one state per layer")
    return [
        None if entry is None else _decode(entry, f"states.{index}", archive, files)
        for index, entry in enumerate(entries)
    ]


def _arrays_of(record: Any) -> list[NDArray[Any]]:
    found: list[NDArray[Any]] = []
    for field in dataclasses.fields(record):
        value = getattr(record, field.name)
        if isinstance(value, np.ndarray):
            found.append(value)
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            found += _arrays_of(value)
    return found


def _layer(archive: Any, files: set[str], architecture: Architecture, index: int) -> Dense:
    """Layer ``index``'s ``W`` and ``b``, checked for presence, dtype, shape and finiteness."""
    n_in, n_out = architecture.sizes[index], architecture.sizes[index + 1]
    arrays = []
    for name, shape in [(f"W{index}", (n_out, n_in)), (f"b{index}", (n_out,))]:
        if name not in files:
            raise _Unreadable(f"it has no entry {name!r} for sizes {list(architecture.sizes)}")
        array = cast(NDArray[Any], archive[name])
        if array.dtype.kind != "f":
            raise _Unreadable(f"{name} is {array.dtype}: parameters must be floating point")
        if array.shape != shape:
            raise _Unreadable(
                f"{name} has shape {array.shape} where sizes {list(architecture.sizes)} need "
                f"{shape}: the arrays do not match the sizes"
            )
        if not np.isfinite(array).all():
            raise _Unreadable(f"{name} {_non_finite(array)}")
        arrays.append(array)
    return Dense(arrays[0], arrays[1])


def _parse_split(record: object) -> SplitRecord | None:
    if record is None:
        return None
    fields = {field.name for field in dataclasses.fields(SplitRecord)}
    if not isinstance(record, dict) or not set(record) <= fields:
        raise _Unreadable("its split entry is not a data split record")
    try:
        return SplitRecord(**record)
    except TypeError as error:
        raise _Unreadable(f"its split entry is incomplete ({_one_line(error)})") from None


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[list[Dense], Architecture]:
    """Read the parameters and architecture of a checkpoint (see :func:`read_checkpoint`).

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
    IsADirectoryError
        If ``path`` is a directory.
    ValueError
        If the file is not a typedbackprop checkpoint, or is damaged.
    """
    checkpoint = read_checkpoint(path)
    if checkpoint.architecture is None:
        raise ValueError(
            f"{path} holds a {checkpoint.model or 'layered'} network, not a multilayer "
            "perceptron: read it with typedbackprop.read_checkpoint (any network)"
        )
    return checkpoint.layers, checkpoint.architecture


def check_split(recorded: SplitRecord | None, data: SplitData) -> str | None:
    """Check that ``data`` is split as the checkpoint's network was trained and tested on.

    Parameters
    ----------
    recorded
        The checkpoint's :attr:`Checkpoint.split`.
    data
        The data set it is about to be evaluated (or trained further) on.

    Returns
    -------
    str or None
        ``None`` when the splits agree; a warning when it cannot be told (the checkpoint or
        the data set records no split), or when the settings agree but the test examples do
        not (another version of scikit-learn may split differently).

    Raises
    ------
    SplitMismatchError
        If a setting differs (data set, seed, test fraction, standardisation, ...): the
        network would be tested on examples it was trained on.
    """
    if recorded is None:
        return (
            "the checkpoint does not record the data split it was trained on: if that was "
            "another seed, the test accuracy includes examples it trained on"
        )
    if data.split is None:
        return f"{data.name} does not record its split: cannot check it against the checkpoint"
    differences = recorded.differences(data.split)
    if differences:
        raise SplitMismatchError(
            f"the network was trained on a split with {'; '.join(differences)}: its test "
            "examples would include examples it trained on"
        )
    if recorded.test_digest != data.split.test_digest:
        return (
            f"{data.name} is split with the same settings but into other test examples than "
            "the checkpoint's (another version of scikit-learn?): the test accuracy may "
            "include examples it trained on"
        )
    return None
