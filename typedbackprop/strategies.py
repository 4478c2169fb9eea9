"""Hypothesis strategies that draw a layer's inputs from its annotations, for your own tests.

This module needs `hypothesis <https://hypothesis.readthedocs.io>`_, a development dependency
of typedbackprop (``pip install typedbackprop[dev]``, or ``pip install hypothesis``); nothing
else in the package imports it.

:func:`layer_inputs` reads the jaxtyping annotations of a function's float-array parameters,
draws a *distinct* size for every dimension name (so that a transpose or a sum over the wrong
axis cannot pass by a coincidence of sizes), and draws float64 arrays of those shapes::

    from hypothesis import given
    import typedbackprop as tbp
    from typedbackprop.strategies import layer_inputs

    @given(layer_inputs(tbp.nn.affine_forward))
    def test_affine(drawn):
        W, b, a_prev = drawn.inputs
        z = tbp.nn.affine_forward(W, b, a_prev)
        assert z.shape == (drawn.sizes["out"], drawn.sizes["batch"])
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from typedbackprop.checking import Array
from typedbackprop.gradcheck.shapes import (
    array_specs,
    dimension_names,
    require_sizes,
    shape_of,
)

__all__ = ["LayerInputs", "layer_inputs"]


class LayerInputs(NamedTuple):
    """What :func:`layer_inputs` draws."""

    sizes: dict[str, int]
    """The size of each dimension name, no two alike."""
    inputs: tuple[Array, ...]
    """One float64 array per float-array parameter of the function, in order."""


def layer_inputs(
    function: Callable[..., Any],
    *,
    sizes: Mapping[str, int] | None = None,
    min_size: int = 2,
    max_size: int = 8,
    elements: st.SearchStrategy[float] | None = None,
    annotations: Sequence[tuple[str, Any]] | None = None,
) -> st.SearchStrategy[LayerInputs]:
    """Draw inputs for ``function`` from its jaxtyping annotations.

    Parameters
    ----------
    function
        A function whose float-array parameters are annotated, ``Float[Array, "out inp"]``;
        parameters of other types must have defaults (they are not drawn).
    sizes
        Fixed sizes for some dimension names (``{"batch": 1}``); the others are drawn.
    min_size, max_size
        The range the drawn sizes come from; it must hold a distinct size for every name.
    elements
        The strategy for the entries (default: finite floats in ``[-2, 2]``).
    annotations
        ``(name, annotation)`` of each array to draw, instead of ``function``'s parameters.

    Returns
    -------
    SearchStrategy[LayerInputs]
        The sizes and the arrays.

    Raises
    ------
    ValueError
        If ``[min_size, max_size]`` holds fewer sizes than there are names to draw, or a
        fixed size is not a whole number of at least 1.
    """
    specs = array_specs(function, annotations)
    fixed = dict(sizes or {})
    require_sizes(fixed)
    names = [name for name in dimension_names(specs) if name not in fixed]
    available = [size for size in range(min_size, max_size + 1) if size not in fixed.values()]
    if len(available) < len(names):
        raise ValueError(
            f"{len(names)} dimension names ({', '.join(names)}) need distinct sizes, but only "
            f"{len(available)} lie in [{min_size}, {max_size}] apart from the fixed ones"
        )
    values = elements if elements is not None else st.floats(-2.0, 2.0, allow_subnormal=False)

    @st.composite
    def draw(draw_from: st.DrawFn) -> LayerInputs:
        drawn = draw_from(st.permutations(available))[: len(names)]
        bound = {**fixed, **dict(zip(names, drawn, strict=True))}
        arrays = tuple(
            draw_from(hnp.arrays(np.float64, shape_of(spec, bound), elements=values))
            for spec in specs
        )
        return LayerInputs(bound, arrays)

    return draw()
