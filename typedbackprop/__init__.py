"""typedbackprop: backpropagation in NumPy whose shapes document and check themselves.

Every forward and backward function is annotated with named dimensions, ``Float[Array, "out
batch"]``, checked on every call (``TYPEDBACKPROP_CHECKS=0`` turns the checks off). The
annotation of each gradient equals the annotation of the value it is the gradient of; that
equality is what decides every transpose in the backward pass.

The top level is the front door: what the README's sections use. Every layer family (records,
caches, forward and backward functions, the tables) is in :mod:`typedbackprop.nn`, the
optimizers in :mod:`typedbackprop.optimizers`.
"""

import typedbackprop._interrupt  # noqa: F401  (first: Ctrl-C while the command line imports)
from typedbackprop import nn, optimizers
from typedbackprop.checking import CHECKS_ENABLED, Array, IntArray, checked, require_finite
from typedbackprop.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from typedbackprop.datasets import load_dataset
from typedbackprop.gradcheck import (
    ArgumentCheck,
    GradcheckError,
    GradcheckReport,
    LayerCheckError,
    LayerReport,
    check_layer,
    gradcheck,
    gradcheck_network,
    numerical_gradient,
)
from typedbackprop.initialize import init_layers
from typedbackprop.nn import (
    Activation,
    ActivationName,
    Dense,
    Layer,
    LossName,
    Mode,
    backward,
    forward,
    initial_states,
    loss_and_grads,
    mlp,
    network_backward,
    network_forward,
    network_loss_and_grads,
    predict,
)
from typedbackprop.training import History, evaluate, train

__version__ = "0.1.0"

__all__ = [
    # checking your own code
    "Array",
    "IntArray",
    "checked",
    "require_finite",
    "CHECKS_ENABLED",
    # a network
    "Dense",
    "Activation",
    "Layer",
    "Mode",
    "ActivationName",
    "LossName",
    "mlp",
    "forward",
    "backward",
    "predict",
    "loss_and_grads",
    "network_forward",
    "network_backward",
    "network_loss_and_grads",
    "initial_states",
    "init_layers",
    # gradient checking
    "gradcheck",
    "gradcheck_network",
    "numerical_gradient",
    "check_layer",
    "GradcheckReport",
    "GradcheckError",
    "LayerReport",
    "LayerCheckError",
    "ArgumentCheck",
    # training, data, checkpoints
    "train",
    "evaluate",
    "History",
    "load_dataset",
    "save_checkpoint",
    "load_checkpoint",
    "read_checkpoint",
    # every layer family, and the optimizers
    "nn",
    "optimizers",
]
