"""Fixtures and hooks for the whole suite; helpers that tests import live in ``helpers.py``."""

import numpy as np
import pytest

import typedbackprop as tbp


def pytest_report_header() -> str:
    # The wrong-shape tests expect the runtime checks; say in the header whether they are on.
    state = "on" if tbp.CHECKS_ENABLED else "OFF (TYPEDBACKPROP_CHECKS=0): wrong-shape tests fail"
    return f"typedbackprop runtime shape checks: {state}"


@pytest.fixture
def rng() -> np.random.Generator:
    """A generator seeded the same way in every test: fixed data for the non-hypothesis tests."""
    return np.random.default_rng(12345)
