"""Every forward and backward equation of a network, with the concrete shape of every operand.

The math lives in :mod:`typedbackprop.nn`; the words that tell it live here, one module per
family (``typedbackprop.explain.affine`` for the dense layer, ``.attention``, ``.transformer``
...), each with a ``<family>_forward_rows`` and a ``<family>_backward_rows``, and one table,
:data:`~typedbackprop.explain.describers.DESCRIBERS`, that maps a parameter record to its
describer. :func:`explain_network` runs a network's real forward and backward passes and asks
each layer's describer for its equations; :func:`explain` does so for a perceptron, in either
layout.
"""

from typedbackprop.explain.batch_first import LAYOUTS, LayoutName, explain_network_batch_first
from typedbackprop.explain.describers import DESCRIBERS, Describer, describer_of
from typedbackprop.explain.network import explain, explain_network, layer_names
from typedbackprop.explain.text import Names, Row, shape_text, table

__all__ = [
    "explain",
    "explain_network",
    "explain_network_batch_first",
    "layer_names",
    "LAYOUTS",
    "LayoutName",
    "DESCRIBERS",
    "Describer",
    "describer_of",
    "Names",
    "Row",
    "shape_text",
    "table",
]
