"""Array aliases and the ``checked`` decorator that enforces them on every call.

Every forward and backward function in typedbackprop is annotated with named dimensions,
``Float[Array, "out batch"]``, and wrapped in :func:`checked`. With checks on (the default) a call
whose shapes disagree with the annotation raises :class:`jaxtyping.TypeCheckError`. Its message
opens with the dimension that disagrees, its size there and the argument that bound it
(``a_prev: batch is 4 here, but grad_z bound batch=5``), then gives jaxtyping's report, which
lists the size bound to every dimension name (``out=2``, ``batch=5``). Set the environment
variable ``TYPEDBACKPROP_CHECKS=0`` before importing typedbackprop to turn the checks off:
``checked`` then returns each function unchanged and costs nothing.

The check is the stock ``jaxtyped(typechecker=beartype)`` one, made stricter in one respect:
beartype checks one sampled item of a container (a list, a dict, a set, a deque, anything given
to ``Iterable[...]``), ``checked`` checks every item. What makes it cheap enough to leave on is
that its verdict depends only on the *signature* of a call: the type, shape and dtype of each
array argument, the type of each number (its value, when an annotation reads it: ``{size}``),
the value of each string, the signatures of a list's or a tuple's items. A call whose signature
has already passed is recognised by one dictionary look-up; its body runs in a dimension scope
holding the sizes that signature bound (as inside the stock check), and the call passes if its
result has the signature that call returned and its arguments still have theirs after the body.
Every new signature, every difference and every failing call goes through the full check, so a
call is refused whenever the stock check would refuse it, first call or thousandth.

An exception that NumPy raises inside a checked function (``matmul: ... size 4 is different
from 5``) keeps its type and gains a note naming every array argument's dimensions and, where the
sizes tell, the dimensions that failed to meet.

Records (frozen dataclasses whose fields carry named dimensions, such as a layer's parameters or
the cache its forward pass saves) are checked field by field in the *same* dimension scope as the
call that takes or returns them. That is the layer contract's guarantee: a backward pass
that receives ``cache: DenseCache`` binds ``inp`` and ``batch`` from ``cache.a_prev``, so a
``grad_a_prev`` not shaped like the ``a_prev`` forward saw is refused, although backward's own
arguments could not tell.

The package, one concern a module:

- ``checking.arrays``: ``Array``, ``IntArray``, ``CHECKS_ENABLED``,
  ``require_finite``;
- ``checking.decorator``: ``checked``;
- ``checking.cache``: the signature cache (and ``trust``, the depth of calls
  that vouch for the checks below them; ``trusted()``, whether there is one, in one C call);
- ``checking.plan``: what a function's hints ask of every check, worked out once;
- ``checking.full``: the full check of a call;
- ``checking.walk``: the container walk, every item in order;
- ``checking.records``: records' fields in the scope of a call;
- ``checking.construction``: ``checked_record``, records checked at
  construction;
- ``checking.diagnosis``: a refusal told in dimension names;
- ``checking.static``: ``static_jaxtyping``, the dimension declaration Pyrefly's static
  shape checking reads, and ``runtime_shapes_only``, for a function it cannot follow;
- ``checking.jaxtyping_adapter``: the one module that uses jaxtyping's private
  internals, with the versions it was written for.
"""

from typedbackprop.checking.arrays import CHECKS_ENABLED, Array, IntArray, require_finite
from typedbackprop.checking.cache import full_checks, trust, trusted
from typedbackprop.checking.construction import checked_record
from typedbackprop.checking.decorator import checked
from typedbackprop.checking.records import record_fields
from typedbackprop.checking.static import runtime_shapes_only, static_jaxtyping

__all__ = [
    "Array",
    "IntArray",
    "CHECKS_ENABLED",
    "checked_record",
    "checked",
    "full_checks",
    "record_fields",
    "require_finite",
    "runtime_shapes_only",
    "static_jaxtyping",
    "trust",
    "trusted",
]
