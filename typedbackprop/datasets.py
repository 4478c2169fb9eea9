"""Data sets in the house layout: features first, one column per example.

scikit-learn gives data batch-first, ``X`` of shape ``(n_samples, n_features)``; the transpose
to ``(features, batch)`` happens once, in :func:`features_first`, whose annotation shows it.
scikit-learn is an optional extra (``pip install "typedbackprop[data]"``) and is imported only
when a data set that needs it is loaded.
"""

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal, cast, get_args

import numpy as np
from jaxtyping import Float, Int
from numpy.typing import NDArray

from typedbackprop.checking import Array, IntArray, checked, require_finite

__all__ = [
    "DatasetName",
    "Dataset",
    "features_first",
    "load_dataset",
    "step",
    "circles",
    "iris",
    "digits",
]

DatasetName = Literal["step", "circles", "iris", "digits"]
"""The names :func:`load_dataset` accepts."""
Task = Literal["binary", "multiclass"]


@dataclass(frozen=True)
class Dataset:
    """A train/test split in the house layout.

    Binary tasks have float targets of shape ``(1, n)`` (0 or 1); multiclass tasks have integer
    labels of shape ``(n,)``.
    """

    name: str
    task: Task
    classes: int
    x_train: Float[Array, "features n_train"]
    y_train: Float[Array, "1 n_train"] | Int[IntArray, " n_train"]
    x_test: Float[Array, "features n_test"]
    y_test: Float[Array, "1 n_test"] | Int[IntArray, " n_test"]


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
    try:
        import sklearn.datasets
        import sklearn.model_selection
    except ImportError as error:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            'this data set needs scikit-learn: pip install "typedbackprop[data]"'
        ) from error
    return cast(ModuleType, sklearn)


def _split(
    name: str,
    task: Task,
    X: NDArray[Any],
    labels: NDArray[Any],
    seed: int,
    test_fraction: float,
    standardize: bool,
) -> Dataset:
    """A seeded, stratified split; standardisation is fitted on the training part only."""
    X = np.asarray(X, dtype=np.float64)
    require_finite(f"{name} data", X)
    sklearn = _sklearn()
    X_train, X_test, labels_train, labels_test = sklearn.model_selection.train_test_split(
        X, labels, test_size=test_fraction, random_state=seed, stratify=labels
    )
    if standardize:
        mean = X_train.mean(axis=0)
        scale = X_train.std(axis=0)
        scale[scale == 0] = 1.0
        X_train, X_test = (X_train - mean) / scale, (X_test - mean) / scale
    classes = int(np.max(labels)) + 1
    if task == "binary":
        y_train: Array | IntArray = labels_train.astype(np.float64)[np.newaxis, :]
        y_test: Array | IntArray = labels_test.astype(np.float64)[np.newaxis, :]
    else:
        y_train, y_test = labels_train.astype(np.int64), labels_test.astype(np.int64)
    return Dataset(
        name, task, classes, features_first(X_train), y_train, features_first(X_test), y_test
    )


def step(n_samples: int = 1000, seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    """The 1-D step: inputs evenly spaced on ``[-5, 5]``, class 1 where the input is positive.

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
        A binary task with one feature.
    """
    inputs = np.linspace(-5.0, 5.0, n_samples)[:, np.newaxis]
    labels = (inputs[:, 0] > 0).astype(np.int64)
    return _split("step", "binary", inputs, labels, seed, test_fraction, standardize=False)


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
    return _split("circles", "binary", X, labels, seed, test_fraction, standardize=False)


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
    return _split("iris", "multiclass", bunch.data, bunch.target, seed, test_fraction, True)


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
    return _split("digits", "multiclass", bunch.data, bunch.target, seed, test_fraction, True)


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
