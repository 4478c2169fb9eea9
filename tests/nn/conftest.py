"""Tests of the layer families in ``typedbackprop.nn``; ``from helpers import ...`` works here.

pytest puts ``tests/`` on ``sys.path`` to import ``tests/conftest.py`` (in its default import
mode); this makes it explicit, for a run of ``tests/nn`` alone in any mode.
"""

import sys
from pathlib import Path

TESTS = str(Path(__file__).resolve().parent.parent)
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)
