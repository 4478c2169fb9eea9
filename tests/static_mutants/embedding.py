"""Shape mistakes in the learned positions: the table's rows put in as columns, or summed wrong.

The position table is ``"context features"``, one row per position, while the sequences are
``"features seq batch"``, one column per position: the table must be transposed on the way in
and on the way back, added along ``batch`` on the way in and summed over ``batch`` on the way
back. With as many features as positions (and examples) each mistake runs, on the wrong numbers.
The lookup and the scatter by ids are checked at runtime only (``np.take``, ``np.add.at``).
"""

from static_mutants import Mutant

MODULE = "typedbackprop/nn/embedding.py"

MUTANTS: list[Mutant] = [
    Mutant(
        MODULE,
        "positional_forward",
        "return x + table[:seq].T[:, :, np.newaxis], PositionalEmbeddingCache(table, x)",
        "return x + table[:seq][:, :, np.newaxis], PositionalEmbeddingCache(table, x)",
        "the position table added without its transpose, rows as columns",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "positional_forward",
        "return x + table[:seq].T[:, :, np.newaxis], PositionalEmbeddingCache(table, x)",
        "return x + table[:seq].T, PositionalEmbeddingCache(table, x)",
        "the positions added without [:, :, np.newaxis], so broadcast along the wrong axes",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "positional_backward",
        'grad_rows: Float[Array, "seq features"] = grad_y.sum(axis=2).T  # the rows forward added',
        'grad_rows: Float[Array, "seq features"] = grad_y.sum(axis=1).T',
        "the positions' gradient summed over seq instead of batch",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "positional_backward",
        'grad_rows: Float[Array, "seq features"] = grad_y.sum(axis=2).T  # the rows forward added',
        'grad_rows: Float[Array, "seq features"] = grad_y.sum(axis=2)',
        "the positions' gradient without the transpose back to rows",
        silent_at_runtime=True,
    ),
]
