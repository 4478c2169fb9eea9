"""Data sets in the house layout: features first, one column per example.

scikit-learn gives data batch-first, ``X`` of shape ``(n_samples, n_features)``; the transpose
to ``(features, batch)`` happens once, in :func:`features_first`, whose annotation shows it.
scikit-learn is an optional extra (``pip install "typedbackprop[data]"``) and is imported only
when a data set that needs it is loaded.
"""

import dataclasses
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Literal, cast, get_args

import numpy as np
from jaxtyping import Float, Int, Shaped
from numpy.typing import NDArray

from typedbackprop.checking import Array, IntArray, checked

__all__ = [
    "DatasetName",
    "Dataset",
    "SplitRecord",
    "features_first",
    "split_dataset",
    "load_dataset",
    "step",
    "circles",
    "iris",
    "digits",
    "SequenceDataset",
    "SequenceDatasetName",
    "SEQUENCE_DATASETS",
    "sort_dataset",
    "recall_dataset",
]

DatasetName = Literal["step", "circles", "iris", "digits"]
"""The names :func:`load_dataset` accepts: tables of features, for a perceptron."""
SequenceDatasetName = Literal["sort", "recall"]
"""The sequence data sets of :data:`SEQUENCE_DATASETS`: token ids, for a sequence model."""
Task = Literal["binary", "multiclass"]


@checked
def _check_split(
    x_train: Float[Array, "features n_train"],
    y_train: Float[Array, "out n_train"] | Int[IntArray, " n_train"],
    x_test: Float[Array, "features n_test"],
    y_test: Float[Array, "out n_test"] | Int[IntArray, " n_test"],
) -> None:
    """Bind ``features`` and ``out`` across the two parts, and each part's number of examples."""


@dataclass(frozen=True)
class SplitRecord:
    """How a :class:`Dataset` was split: enough to make the same split again, and to tell.

    A checkpoint stores this record, so that a network is tested later on the examples it was
    tested on, never on examples it was trained on.

    Parameters
    ----------
    dataset
        The data set's name.
    seed
        The seed of the split (and of the data, for a generated data set).
    test_fraction
        The share of examples held out for testing.
    standardize
        Whether each feature was standardised with the training part's mean and deviation.
    examples
        How many examples were split.
    test_digest
        ``sha256:`` and the hex digest of the test part's example indices (``int64``, in the
        order of the test part): two splits agree exactly when their digests do.
    options
        The generator's settings for a generated data set (``n_samples``, ``noise``, ...);
        empty for a fixed one.
    """

    dataset: str
    seed: int
    test_fraction: float
    standardize: bool
    examples: int
    test_digest: str
    options: dict[str, float] = field(default_factory=dict)

    def differences(self, other: "SplitRecord") -> list[str]:
        """The settings in which ``other`` differs from this record, as ``"seed 0, not 1"``.

        Parameters
        ----------
        other
            The record to compare with.

        Returns
        -------
        list of str
            Empty when every setting agrees (the digests may still differ: see
            :attr:`test_digest`).
        """
        names = ["dataset", "seed", "test_fraction", "standardize", "examples", "options"]
        return [
            f"{name} {getattr(self, name)!r}, not {getattr(other, name)!r}"
            for name in names
            if getattr(self, name) != getattr(other, name)
        ]


@dataclass(frozen=True)
class Dataset:
    """A train/test split in the house layout, features first.

    Binary tasks have float targets of shape ``(1, n)`` (0 or 1); multiclass tasks have integer
    labels of shape ``(n,)``.

    Parameters
    ----------
    name
        What the data set is called (in messages and plots).
    task
        ``"binary"`` or ``"multiclass"``.
    classes
        The number of classes.
    x_train, x_test
        Inputs, one column per example.
    y_train, y_test
        Targets or labels, one per example.
    split
        How the examples were split (``None`` for a data set made by hand).
    class_names
        A name per class, for legends (``"setosa"``, ``"inner circle"``); empty for
        ``"class 0"``, ``"class 1"``, ...
    """

    name: str
    task: Task
    classes: int
    x_train: Float[Array, "features n_train"]
    y_train: Float[Array, "1 n_train"] | Int[IntArray, " n_train"]
    x_test: Float[Array, "features n_test"]
    y_test: Float[Array, "1 n_test"] | Int[IntArray, " n_test"]
    split: SplitRecord | None = None
    class_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_split(self.x_train, self.y_train, self.x_test, self.y_test)
        if self.class_names and len(self.class_names) != self.classes:
            raise ValueError(
                f"{self.name}: {len(self.class_names)} class names for {self.classes} classes"
            )

    def class_name(self, label: int) -> str:
        """The name of class ``label``: its entry in :attr:`class_names`, or ``"class 3"``."""
        return self.class_names[label] if self.class_names else f"class {label}"

    @property
    def outputs(self) -> int:
        """The width of a network's output layer for this task: 1 (binary) or ``classes``."""
        return self.classes if self.task == "multiclass" else 1


@checked
def features_first(X: Float[Array, "batch features"]) -> Float[Array, "features batch"]:
    """Transpose batch-first data into the house layout, once, at the boundary.

    Parameters
    ----------
    X
        Data as scikit-learn gives it: one row per example.

    Returns
    -------
    x
        The same data with one column per example (a contiguous copy, so the caller's array
        is never shared).

    Notes
    -----
    ``x_{fb} = X_{bf}``: with ``x`` features first, a layer computes ``z = W x + b`` exactly as
    the math is written, and every gradient keeps the annotation of its value.
    """
    return np.ascontiguousarray(X.T, dtype=np.float64)


def _sklearn() -> ModuleType:
    """scikit-learn, imported on first use, or an ``ImportError`` that says how to install it."""
    try:
        import sklearn.datasets
        import sklearn.model_selection
    except ImportError as error:
        raise ImportError(
            'this data set needs scikit-learn, an optional extra: pip install "typedbackprop[data]"'
            ' (in a clone of the repository: pip install -e ".[data]")'
        ) from error
    return cast(ModuleType, sklearn)


def _require_finite_data(name: str, X: NDArray[Any]) -> None:
    """Raise ``ValueError`` naming the first NaN or infinite entry of batch-first data."""
    bad = np.argwhere(~np.isfinite(X))
    if len(bad):
        example, feature = (int(i) for i in bad[0])
        raise ValueError(
            f"{name} data contains {X[example, feature]} (example {example}, feature {feature}; "
            f"{len(bad)} non-finite values in all): remove or impute missing values first"
        )


@checked
def split_dataset(
    name: str,
    X: Shaped[NDArray[Any], "batch features"],
    labels: Shaped[NDArray[Any], " batch"],
    *,
    seed: int = 0,
    test_fraction: float = 0.2,
    standardize: bool = False,
) -> Dataset:
    """Split batch-first data, as scikit-learn gives it, into a :class:`Dataset`.

    Parameters
    ----------
    name
        What the data set is called (in messages and plots).
    X
        Inputs, one row per example, as scikit-learn and most files hold them.
    labels
        The class of each example, a whole number in ``[0, classes)``.
    seed
        Seeds the split: the same seed gives the same split.
    test_fraction
        The share of examples held out for testing, in ``(0, 1)``.
    standardize
        Shift and scale every feature to mean 0 and standard deviation 1, with the mean and
        standard deviation of the training part only (the test part must not leak into
        training). Features that are constant in the training part are only shifted.

    Returns
    -------
    Dataset
        Features first. Two classes make a ``"binary"`` task with float 0/1 targets of shape
        ``(1, n)``; more make a ``"multiclass"`` task with integer labels of shape ``(n,)``.
        Its :attr:`~Dataset.split` records the settings and the test examples' indices.

    Raises
    ------
    ValueError
        If ``X`` contains NaN or infinity (the message names the first such entry), a label is
        not a whole number in ``[0, classes)``, there are fewer than two classes, or
        ``test_fraction`` is outside ``(0, 1)``; or, from scikit-learn, if a class has too few
        examples for a stratified split.

    Notes
    -----
    The split is stratified (each class keeps its share in both parts), by scikit-learn's
    ``train_test_split``. The one transpose, ``(batch, features) → (features, batch)``, is
    :func:`features_first`.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie in (0, 1); got {test_fraction}")
    if X.dtype.kind not in "biuf":
        raise ValueError(f"{name} data must be numbers; got dtype {X.dtype}")
    X = np.asarray(X, dtype=np.float64)
    _require_finite_data(name, X)
    if labels.dtype.kind not in "iu":
        whole = labels.dtype.kind == "f" and bool(np.all(np.mod(labels, 1) == 0))
        if not whole:
            raise ValueError(f"{name} labels must be whole numbers 0, 1, ...; got {labels.dtype}")
    labels = labels.astype(np.int64)
    classes = int(labels.max()) + 1 if labels.size else 0
    if labels.size and labels.min() < 0:
        raise ValueError(f"{name} labels must be whole numbers 0, 1, ...; found {labels.min()}")
    if classes < 2:
        raise ValueError(f"{name} needs at least two classes; its labels give {classes}")
    # Split the example indices, not the data: the same shuffle, and the test indices are
    # what a checkpoint records to tell this split from another (SplitRecord.test_digest).
    train_index, test_index = _sklearn().model_selection.train_test_split(
        np.arange(len(labels)), test_size=test_fraction, random_state=seed, stratify=labels
    )
    X_train, X_test = X[train_index], X[test_index]
    labels_train, labels_test = labels[train_index], labels[test_index]
    digest = hashlib.sha256(np.ascontiguousarray(test_index, dtype="<i8").tobytes()).hexdigest()
    record = SplitRecord(name, seed, test_fraction, standardize, len(labels), f"sha256:{digest}")
    if standardize:
        mean = X_train.mean(axis=0)
        scale = X_train.std(axis=0)
        scale[scale == 0] = 1.0
        X_train, X_test = (X_train - mean) / scale, (X_test - mean) / scale
    if classes == 2:
        y_train: Array | IntArray = labels_train.astype(np.float64)[np.newaxis, :]
        y_test: Array | IntArray = labels_test.astype(np.float64)[np.newaxis, :]
    else:
        y_train, y_test = labels_train, labels_test
    task: Task = "binary" if classes == 2 else "multiclass"
    return Dataset(
        name,
        task,
        classes,
        features_first(X_train),
        y_train,
        features_first(X_test),
        y_test,
        split=record,
    )


def _named(data: Dataset, class_names: tuple[str, ...], **options: float) -> Dataset:
    """``data`` with its classes named and its generator's settings in its split record."""
    split = data.split
    if split is not None and options:
        split = dataclasses.replace(split, options=dict(options))
    return dataclasses.replace(data, split=split, class_names=class_names)


def step(n_samples: int = 1000, seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    """The 1-D step of seed 001: inputs evenly spaced on ``[-5, 5]``, class 1 where positive.

    Parameters
    ----------
    n_samples
        How many points.
    seed
        Seeds the train/test split.
    test_fraction
        The share of points held out for testing.

    Returns
    -------
    Dataset
        A binary task with one feature, not standardised (it is already centred, of unit scale).

    Notes
    -----
    Seed 001 labels the two halves −1 and +1, for a squared error against a sigmoid's output
    that can never reach −1; here they are 0 and 1, the range of a sigmoid output and the
    targets binary cross-entropy takes.
    """
    inputs = np.linspace(-5.0, 5.0, n_samples)[:, np.newaxis]
    labels = (inputs[:, 0] > 0).astype(np.int64)
    data = split_dataset("step", inputs, labels, seed=seed, test_fraction=test_fraction)
    return _named(data, ("x ≤ 0", "x > 0"), n_samples=n_samples)


def circles(
    n_samples: int = 1000,
    seed: int = 0,
    test_fraction: float = 0.2,
    factor: float = 0.3,
    noise: float = 0.1,
) -> Dataset:
    """Two noisy concentric circles (scikit-learn's ``make_circles``): inner ring is class 1.

    Parameters
    ----------
    n_samples
        How many points, half on each circle.
    seed
        Seeds the points and the split.
    test_fraction
        The share of points held out for testing.
    factor
        Radius of the inner circle relative to the outer one.
    noise
        Standard deviation of the Gaussian noise added to every point.

    Returns
    -------
    Dataset
        A binary task with two features.
    """
    sklearn = _sklearn()
    X, labels = sklearn.datasets.make_circles(
        n_samples=n_samples, factor=factor, noise=noise, random_state=seed
    )
    data = split_dataset("circles", X, labels, seed=seed, test_fraction=test_fraction)
    return _named(
        data, ("outer circle", "inner circle"), n_samples=n_samples, factor=factor, noise=noise
    )


def iris(seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    """Fisher's iris flowers (150 examples, 4 features, 3 species), standardised.

    Parameters
    ----------
    seed
        Seeds the split.
    test_fraction
        The share of examples held out for testing.

    Returns
    -------
    Dataset
        A multiclass task with four features and three classes.
    """
    bunch = _sklearn().datasets.load_iris()
    data = split_dataset(
        "iris", bunch.data, bunch.target, seed=seed, test_fraction=test_fraction, standardize=True
    )
    return _named(data, tuple(str(name) for name in bunch.target_names))


def digits(seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    """scikit-learn's bundled 8×8 handwritten digits (1,797 images, 64 pixels, 10 classes).

    Parameters
    ----------
    seed
        Seeds the split.
    test_fraction
        The share of images held out for testing.

    Returns
    -------
    Dataset
        A multiclass task with 64 standardised pixel features and ten classes.
    """
    bunch = _sklearn().datasets.load_digits()
    data = split_dataset(
        "digits", bunch.data, bunch.target, seed=seed, test_fraction=test_fraction, standardize=True
    )
    return _named(data, tuple(str(digit) for digit in range(10)))


def load_dataset(name: str, seed: int = 0) -> Dataset:
    """Load a data set by name (see :data:`DatasetName`).

    Parameters
    ----------
    name
        ``"step"``, ``"circles"``, ``"iris"`` or ``"digits"``.
    seed
        Seeds the data (where random) and the split.

    Returns
    -------
    Dataset
        The split data set.

    Raises
    ------
    ValueError
        For an unknown name.
    """
    loaders: dict[str, Callable[..., Dataset]] = {
        "step": step,
        "circles": circles,
        "iris": iris,
        "digits": digits,
    }
    if name not in loaders:
        raise ValueError(f"unknown data set {name!r}; choose one of {get_args(DatasetName)}")
    return loaders[name](seed=seed)


# --- sequences --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SequenceDataset:
    """A sequence-to-sequence task in the house layout: one column of token ids per example.

    Parameters
    ----------
    name
        What the data set is called.
    vocab
        The number of token ids, ``0`` to ``vocab − 1``.
    x_train, x_test
        The input tokens, one column per example.
    y_train, y_test
        The answer tokens, one column per example: the targets of the last ``answer``
        positions of the model's output.
    """

    name: str
    vocab: int
    x_train: Int[IntArray, "seq n_train"]
    y_train: Int[IntArray, "answer n_train"]
    x_test: Int[IntArray, "seq n_test"]
    y_test: Int[IntArray, "answer n_test"]


def sort_dataset(
    length: int = 8, n_train: int = 10_000, n_test: int = 1_000, seed: int = 0, digits: int = 10
) -> SequenceDataset:
    """Sequences of digits and the same digits sorted, for a model that writes the answer.

    Parameters
    ----------
    length
        Digits per sequence.
    n_train, n_test
        How many training and test sequences; no test sequence occurs among the training ones.
    seed
        Seeds the draw.
    digits
        The number of distinct digits (the vocabulary).

    Returns
    -------
    SequenceDataset
        ``x`` is ``(2·length − 1, n)``: the digits, then the sorted digits but the last, as a
        model reads them while it writes the answer (teacher forcing); ``y`` is
        ``(length, n)``, the sorted digits. A causal model's output at input position
        ``length − 1 + i`` is read as the ``i``-th sorted digit: it has seen every digit and
        the ``i`` sorted ones before it.

    Raises
    ------
    ValueError
        If there are not ``n_train + n_test`` distinct sequences to draw.
    """
    total = n_train + n_test
    if length < 1 or n_train < 1 or n_test < 1 or digits < 2 or digits**length < total:
        raise ValueError(
            f"cannot draw {n_train} + {n_test} distinct sequences of {length} of {digits} digits"
        )
    rng = np.random.default_rng(seed)
    drawn = np.empty((0, length), dtype=np.int64)
    while len(drawn) < total:  # distinct rows, in the order of their first draw
        more = np.concatenate([drawn, rng.integers(0, digits, size=(2 * total, length))])
        _, first = np.unique(more, axis=0, return_index=True)
        drawn = more[np.sort(first)][:total]
    answers = np.sort(drawn, axis=1)
    inputs = np.concatenate([drawn, answers[:, :-1]], axis=1)
    # Drawn one example per row, batch first; the house layout takes one example per column.
    return SequenceDataset(
        "sort",
        digits,
        np.ascontiguousarray(inputs[:n_train].T),
        np.ascontiguousarray(answers[:n_train].T),
        np.ascontiguousarray(inputs[n_train:].T),
        np.ascontiguousarray(answers[n_train:].T),
    )


def recall_dataset(
    length: int = 30,
    n_train: int = 2_000,
    n_test: int = 500,
    seed: int = 0,
    symbols: int = 8,
    fillers: int = 1,
) -> SequenceDataset:
    """Sequences whose answer is their first token, seen ``length − 1`` steps before the end.

    A recurrent model reads the whole sequence and answers from its last state, so it must
    carry the first token through every later step: the task on which a plain RNN's gradient
    vanishes and a gated one's does not.

    Parameters
    ----------
    length
        Tokens per sequence, the first one included.
    n_train, n_test
        How many training and test sequences.
    seed
        Seeds the draw.
    symbols
        The tokens the first position draws from, ids ``0`` to ``symbols − 1``: the classes.
    fillers
        The tokens every later position draws from, ids ``symbols`` to
        ``symbols + fillers − 1``. With one (the default) every later position is the same
        blank: there are only ``symbols`` distinct sequences, and the test split, drawn after the
        training one from the same generator, repeats them; it measures the task, not unseen
        sequences. With two or more, no test sequence is a training sequence.

    Returns
    -------
    SequenceDataset
        ``x`` is ``(length, n)``, the tokens; ``y`` is ``(1, n)``, the first token; ``vocab`` is
        ``symbols + fillers``.

    Raises
    ------
    ValueError
        If a size is below 1 (``length`` below 2), or with ``fillers ≥ 2`` there are not
        ``n_train + n_test`` distinct sequences to draw.
    """
    total = n_train + n_test
    if length < 2 or n_train < 1 or n_test < 1 or symbols < 1 or fillers < 1:
        raise ValueError(
            f"recall needs length >= 2 and at least one of each of n_train, n_test, symbols and "
            f"fillers; got length={length}, n_train={n_train}, n_test={n_test}, "
            f"symbols={symbols}, fillers={fillers}"
        )
    if fillers > 1 and symbols * fillers ** (length - 1) < total:
        raise ValueError(
            f"cannot draw {n_train} + {n_test} distinct sequences of {length} tokens from "
            f"{symbols} symbols and {fillers} fillers"
        )
    rng = np.random.default_rng(seed)

    def draw(count: int) -> NDArray[np.int64]:
        first = rng.integers(0, symbols, size=(count, 1))
        rest = rng.integers(symbols, symbols + fillers, size=(count, length - 1))
        return np.concatenate([first, rest], axis=1)

    drawn = draw(total)
    while fillers > 1 and len(np.unique(drawn, axis=0)) < total:  # distinct rows, first kept
        more = np.concatenate([drawn, draw(total)])
        _, first_seen = np.unique(more, axis=0, return_index=True)
        drawn = more[np.sort(first_seen)][:total]
    # Drawn one example per row, batch first; the house layout takes one example per column.
    return SequenceDataset(
        "recall",
        symbols + fillers,
        np.ascontiguousarray(drawn[:n_train].T),
        np.ascontiguousarray(drawn[:n_train, :1].T),
        np.ascontiguousarray(drawn[n_train:].T),
        np.ascontiguousarray(drawn[n_train:, :1].T),
    )


SEQUENCE_DATASETS: dict[str, Callable[..., SequenceDataset]] = {
    "sort": sort_dataset,
    "recall": recall_dataset,
}
"""Every sequence data set by name (see :data:`SequenceDatasetName`): ``make(seed=...)``."""

assert set(SEQUENCE_DATASETS) == set(get_args(SequenceDatasetName))
