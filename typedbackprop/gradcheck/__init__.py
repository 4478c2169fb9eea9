"""Gradient checking for anyone's NumPy code: analytic Jacobians against central differences.

The NumPy counterpart of ``torch.autograd.gradcheck``. There is no autograd to supply the
analytic side, so you pass your ``forward`` and your ``backward`` (a vector-Jacobian product):

>>> import numpy as np, typedbackprop as tbp
>>> rng = np.random.default_rng(0)
>>> W, b, a_prev = rng.normal(size=(4, 3)), rng.normal(size=4), rng.normal(size=(3, 5))
>>> report = tbp.gradcheck(
...     tbp.nn.affine_forward,
...     lambda grad_z, W, b, a_prev: tbp.nn.affine_backward(grad_z, W, a_prev),
...     [W, b, a_prev],
... )
>>> report.passed
True

:func:`check_layer` goes further for a layer of your own: it builds the inputs from
``forward``'s annotations and checks everything a backward pass owes its forward pass.
:func:`gradcheck_network` checks a whole network's ``loss_and_grads``, at any size.
"""

from typedbackprop.gradcheck.compare import (
    ArgumentCheck,
    GradcheckError,
    GradcheckReport,
    Projection,
)
from typedbackprop.gradcheck.core import DEFAULT_ATOL, DEFAULT_RTOL, gradcheck
from typedbackprop.gradcheck.layer import LayerCheck, LayerCheckError, LayerReport, check_layer
from typedbackprop.gradcheck.network import gradcheck_network
from typedbackprop.gradcheck.numerical import DEFAULT_EPS, numerical_gradient

__all__ = [
    "DEFAULT_EPS",
    "DEFAULT_RTOL",
    "DEFAULT_ATOL",
    "gradcheck",
    "gradcheck_network",
    "check_layer",
    "LayerReport",
    "LayerCheck",
    "LayerCheckError",
    "numerical_gradient",
    "GradcheckReport",
    "ArgumentCheck",
    "Projection",
    "GradcheckError",
]
