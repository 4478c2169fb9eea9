"""The type every layer's parameter record shares, so a network's list of layers has a type.

A network is a list of records of different families: ``[Dense(...), Activation("relu"),
Dense(...)]``. mypy types a list display by the *join* of its items' types, the nearest class
they all derive from: without a common base that is ``object``, and a function taking
``Sequence[Layer]`` would refuse a correct network, or accept a list holding a string. With
:class:`Layer` as the base of every family's record, the join is ``Layer``: a user's mixed list
type-checks under ``mypy --strict`` without casts or annotations, and ``[dense, "relu"]`` is
an error (its join is ``object``).

The base holds nothing and does nothing at run time; which family a record belongs to is read
from :data:`~typedbackprop.nn.families.FAMILIES`.
"""

__all__ = ["Layer"]


class Layer:
    """The base of every layer family's parameter record (``Dense``, ``Attention``, ...).

    A gradient record has its layer's type, so a network's gradients are ``Layer`` records too
    (``None`` for a layer without parameters).
    """

    __slots__ = ()
