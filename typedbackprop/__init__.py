"""typedbackprop: backpropagation in NumPy whose shapes document and check themselves.

Every forward and backward function is annotated with named dimensions, ``Float[Array, "out
batch"]``, checked on every call (``TYPEDBACKPROP_CHECKS=0`` turns the checks off). The
annotation of each gradient equals the annotation of the value it is the gradient of; that
equality is what decides every transpose in the backward pass.
"""

from typedbackprop.checking import CHECKS_ENABLED, Array, IntArray, checked, require_finite
from typedbackprop.checkpoint import load_checkpoint, save_checkpoint
from typedbackprop.datasets import Dataset, features_first, load_dataset, split_dataset
from typedbackprop.gradcheck import (
    ArgumentCheck,
    GradcheckError,
    GradcheckReport,
    gradcheck,
    gradcheck_network,
    numerical_gradient,
)
from typedbackprop.initialize import InitName, init_layers
from typedbackprop.nn.activations import (
    ACTIVATIONS,
    Activation,
    ActivationCache,
    activation_backward,
    activation_forward,
    identity_backward,
    identity_forward,
    leaky_relu_backward,
    leaky_relu_forward,
    relu_backward,
    relu_forward,
    sigmoid_backward,
    sigmoid_forward,
    tanh_backward,
    tanh_forward,
)
from typedbackprop.nn.affine import (
    DenseCache,
    affine_backward,
    affine_forward,
    affine_grad_input,
    affine_grad_params,
    dense_backward,
    dense_forward,
)
from typedbackprop.nn.conv import (
    Conv2d,
    Conv2dCache,
    col2im,
    conv2d_backward,
    conv2d_forward,
    im2col,
)
from typedbackprop.nn.families import FAMILIES, Family, Mode
from typedbackprop.nn.losses import LOSSES, binary_cross_entropy, cross_entropy, squared_error
from typedbackprop.nn.network import (
    ActivationName,
    Dense,
    LayerCache,
    LossName,
    OutputActivationName,
    backward,
    forward,
    loss_and_grads,
    mlp,
    network_backward,
    network_forward,
    network_loss_and_grads,
    predict,
)
from typedbackprop.nn.softmax import softmax_backward, softmax_forward
from typedbackprop.training import (
    Architecture,
    DivergedError,
    History,
    accuracy,
    evaluate,
    is_classification,
    sgd_step,
    train,
)

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS",
    "FAMILIES",
    "LOSSES",
    "Activation",
    "ActivationCache",
    "DenseCache",
    "Conv2d",
    "Conv2dCache",
    "col2im",
    "conv2d_backward",
    "conv2d_forward",
    "im2col",
    "Family",
    "Mode",
    "activation_backward",
    "activation_forward",
    "dense_backward",
    "dense_forward",
    "mlp",
    "network_backward",
    "network_forward",
    "network_loss_and_grads",
    "CHECKS_ENABLED",
    "ActivationName",
    "Architecture",
    "ArgumentCheck",
    "Array",
    "Dataset",
    "Dense",
    "DivergedError",
    "GradcheckError",
    "GradcheckReport",
    "History",
    "InitName",
    "IntArray",
    "LayerCache",
    "LossName",
    "OutputActivationName",
    "accuracy",
    "affine_backward",
    "affine_forward",
    "affine_grad_input",
    "affine_grad_params",
    "backward",
    "binary_cross_entropy",
    "checked",
    "cross_entropy",
    "evaluate",
    "features_first",
    "forward",
    "gradcheck",
    "gradcheck_network",
    "identity_backward",
    "identity_forward",
    "init_layers",
    "is_classification",
    "leaky_relu_backward",
    "leaky_relu_forward",
    "load_checkpoint",
    "load_dataset",
    "loss_and_grads",
    "numerical_gradient",
    "predict",
    "relu_backward",
    "relu_forward",
    "require_finite",
    "save_checkpoint",
    "sgd_step",
    "sigmoid_backward",
    "sigmoid_forward",
    "softmax_backward",
    "softmax_forward",
    "split_dataset",
    "squared_error",
    "tanh_backward",
    "tanh_forward",
    "train",
]
