"""A user's mistakes in calling the network API, each of which ``mypy --strict`` must report.

``tests/test_static.py`` runs mypy on this file and expects exactly one error on each line marked
``# mypy:`` (the error code after it) and none elsewhere. The file is never imported.
"""

import numpy as np

import typedbackprop as tbp

rng = np.random.default_rng(0)
dense = tbp.Dense(rng.normal(size=(2, 3)), np.zeros(2))
x, y = rng.normal(size=(3, 5)), rng.normal(size=(2, 5))

# A string where a layer belongs: the list's type is the join of a record and str, object.
tbp.network_loss_and_grads([dense, "relu"], x, y, "squared_error")  # mypy: list-item
# A misspelt loss: the loss is one of the literal names of LOSSES.
tbp.network_loss_and_grads([dense], x, y, "cross_entopy")  # mypy: arg-type
# A stray argument: there is no fifth positional parameter of this type.
tbp.network_loss_and_grads([dense], x, y, "squared_error", 0.1)  # mypy: arg-type
