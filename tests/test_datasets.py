"""Tests for typedbackprop.datasets: the house layout, seeded splits, the typed boundary."""

import sys

import numpy as np
import pytest
from jaxtyping import TypeCheckError

from typedbackprop.datasets import (
    Dataset,
    circles,
    digits,
    features_first,
    iris,
    load_dataset,
    split_dataset,
    step,
)


@pytest.mark.parametrize(
    ("name", "features", "classes", "task", "examples"),
    [
        ("step", 1, 2, "binary", 1000),
        ("circles", 2, 2, "binary", 1000),
        ("iris", 4, 3, "multiclass", 150),
        ("digits", 64, 10, "multiclass", 1797),
    ],
)
def test_every_data_set_is_features_first_and_split(name, features, classes, task, examples):
    data = load_dataset(name, seed=0)
    assert data.task == task and data.classes == classes
    assert data.x_train.shape[0] == data.x_test.shape[0] == features
    n_train, n_test = data.x_train.shape[1], data.x_test.shape[1]
    assert n_train + n_test == examples and n_test == pytest.approx(0.2 * examples, abs=1)
    if task == "binary":
        assert data.y_train.shape == (1, n_train) and data.y_train.dtype == np.float64
        assert set(np.unique(data.y_train)) == {0.0, 1.0}
    else:
        assert data.y_train.shape == (n_train,) and data.y_train.dtype == np.int64
        assert set(np.unique(data.y_train)) == set(range(classes))
    assert data.x_train.flags.c_contiguous and np.isfinite(data.x_train).all()


def test_splits_are_seeded():
    np.testing.assert_array_equal(iris(seed=3).x_train, iris(seed=3).x_train)
    assert not np.array_equal(iris(seed=3).x_train, iris(seed=4).x_train)
    np.testing.assert_array_equal(circles(seed=1).x_test, circles(seed=1).x_test)


def test_standardisation_is_fitted_on_the_training_part():
    data = digits(seed=0)
    assert np.allclose(data.x_train.mean(axis=1), 0, atol=1e-12)
    assert not np.allclose(data.x_test.mean(axis=1), 0, atol=1e-3)


def test_step_labels_follow_the_sign_of_the_input():
    data = step(n_samples=101, seed=0)
    np.testing.assert_array_equal(data.y_train[0], (data.x_train[0] > 0).astype(float))


def test_features_first_transposes_once_and_copies():
    X = np.arange(6.0).reshape(3, 2)  # three examples, two features
    x = features_first(X)
    np.testing.assert_array_equal(x, [[0.0, 2.0, 4.0], [1.0, 3.0, 5.0]])
    x[0, 0] = 99.0
    assert X[0, 0] == 0.0


def test_features_first_refuses_what_is_not_a_2d_float_array():
    with pytest.raises(TypeCheckError):
        features_first(np.arange(6.0))
    with pytest.raises(TypeCheckError):
        features_first(np.ones((3, 2), dtype=np.int64))


def test_unknown_data_set():
    with pytest.raises(ValueError, match="unknown data set 'mnist'"):
        load_dataset("mnist")


def test_the_split_is_stratified_and_keeps_every_example_once():
    data = iris(seed=5)
    counts = np.bincount(data.y_test, minlength=3)
    np.testing.assert_array_equal(counts, [10, 10, 10])
    assert data.x_train.shape[1] + data.x_test.shape[1] == 150


def test_circles_is_the_seeds_data():
    from sklearn.datasets import make_circles

    X, _ = make_circles(n_samples=200, factor=0.3, noise=0.1, random_state=4)
    data = circles(n_samples=200, seed=4)
    together = np.hstack([data.x_train, data.x_test])  # the same points, features first
    rows = {tuple(row) for row in X}
    assert {tuple(column) for column in together.T} == rows
    inner = np.hypot(*data.x_train)[data.y_train[0] == 1]
    assert np.median(inner) < 0.5  # class 1 is the inner circle (factor 0.3)


def test_split_dataset_takes_a_users_batch_first_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 5)) * 10 + 3
    labels = np.repeat([0, 1, 2], 20)
    data = split_dataset("mine", X, labels, seed=1, test_fraction=0.25, standardize=True)
    assert data.task == "multiclass" and data.classes == data.outputs == 3
    assert data.x_train.shape == (5, 45) and data.x_test.shape == (5, 15)
    np.testing.assert_allclose(data.x_train.std(axis=1), 1.0)
    binary = split_dataset("two", X, labels % 2)
    assert binary.task == "binary" and binary.outputs == 1 and binary.y_train.shape == (1, 48)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_infinity_in_the_data_is_refused_by_name(bad):
    X = np.ones((20, 3))
    X[7, 2] = bad
    with pytest.raises(ValueError, match=rf"mine data contains {bad} \(example 7, feature 2"):
        split_dataset("mine", X, np.arange(20) % 2)


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (np.arange(20) % 2 - 1, "whole numbers"),
        (np.full(20, 0.5), "whole numbers"),
        (np.zeros(20, dtype=int), "at least two classes"),
    ],
)
def test_labels_must_be_classes(labels, message):
    with pytest.raises(ValueError, match=message):
        split_dataset("mine", np.ones((20, 3)), labels)


def test_a_split_needs_a_fraction_between_0_and_1():
    with pytest.raises(ValueError, match="test_fraction"):
        split_dataset("mine", np.ones((20, 3)), np.arange(20) % 2, test_fraction=1.0)


def test_a_dataset_whose_parts_disagree_is_refused():
    x, y = np.ones((2, 5)), np.zeros((1, 5))
    with pytest.raises(TypeCheckError):  # the test part has 3 features, the training part 2
        Dataset("bad", "binary", 2, x, y, np.ones((3, 4)), np.zeros((1, 4)))
    with pytest.raises(TypeCheckError):  # 5 examples, 4 targets
        Dataset("bad", "binary", 2, x, y[:, :4], x, y)


def test_without_scikit_learn_the_error_says_what_to_install(monkeypatch):
    for name in [name for name in sys.modules if name.split(".")[0] == "sklearn"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "sklearn", None)  # import sklearn now raises ImportError
    with pytest.raises(ImportError, match=r'pip install "typedbackprop\[data\]"'):
        load_dataset("iris")


def test_every_data_set_records_how_it_was_split():
    for name, standardize in [
        ("step", False),
        ("circles", False),
        ("iris", True),
        ("digits", True),
    ]:
        data = load_dataset(name, seed=3)
        split = data.split
        assert split.dataset == name and split.seed == 3 and split.standardize is standardize
        assert split.test_fraction == 0.2
        assert split.examples == data.x_train.shape[1] + data.x_test.shape[1]
    assert circles(seed=3).split.options == {"n_samples": 1000, "factor": 0.3, "noise": 0.1}
    assert iris(seed=3).split.options == {}


def test_the_split_digest_tells_splits_apart_and_repeats_for_the_same_seed():
    assert iris(seed=3).split == iris(seed=3).split
    assert iris(seed=3).split.test_digest != iris(seed=4).split.test_digest
    assert iris(seed=3).split.differences(iris(seed=4).split) == ["seed 3, not 4"]


def test_the_digest_is_of_the_test_examples_indices():
    import hashlib

    from sklearn.model_selection import train_test_split

    labels = np.repeat([0, 1], 10)
    X = np.arange(40.0).reshape(20, 2)  # example i is the row (2i, 2i + 1)
    data = split_dataset("mine", X, labels, seed=5, test_fraction=0.25)
    test_index = (data.x_test[0] / 2).astype(np.int64)  # back from the data to the indices
    expected = hashlib.sha256(test_index.astype("<i8").tobytes()).hexdigest()
    assert data.split.test_digest == f"sha256:{expected}"
    # the same examples, in the same order, as scikit-learn's split of the data itself
    _, X_test = train_test_split(X, test_size=0.25, random_state=5, stratify=labels)
    np.testing.assert_array_equal(data.x_test, X_test.T)


def test_classes_have_names_for_legends():
    assert iris().class_names == ("setosa", "versicolor", "virginica")
    assert digits().class_name(7) == "7"
    assert circles().class_names == ("outer circle", "inner circle")
    assert step().class_name(1) == "x > 0"
    mine = split_dataset("mine", np.ones((20, 3)), np.arange(20) % 2)
    assert mine.class_names == () and mine.class_name(1) == "class 1"


def test_class_names_must_match_the_classes():
    x, y = np.ones((2, 5)), np.zeros((1, 5))
    with pytest.raises(ValueError, match="3 class names for 2 classes"):
        Dataset("bad", "binary", 2, x, y, x, y, class_names=("a", "b", "c"))
