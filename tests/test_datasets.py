"""Tests for typedbackprop.datasets: the house layout, seeded splits, the typed boundary."""

import numpy as np
import pytest
from jaxtyping import TypeCheckError

from typedbackprop.datasets import circles, digits, features_first, iris, load_dataset, step


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
