"""Models beyond the perceptron, each with its data set and its training recipe.

The command line's ``--model`` looks a model up in :data:`RECIPES`: how to build its layers from
a seed, which data set it is for, its loss, and how to train it (the settings its docs quote).
"""

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
from jaxtyping import Float, Int
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from typedbackprop.checking import Array, IntArray
from typedbackprop.datasets import SEQUENCE_DATASETS, SplitRecord, load_dataset, recall_dataset
from typedbackprop.models import CONVNET_TRAINING, RecurrentKind, convnet, recurrent, transformer
from typedbackprop.nn.losses import LossName
from typedbackprop.nn.network import Layer, initial_states
from typedbackprop.optimizers import AdamW, all_but_weights
from typedbackprop.training import History, train_network, train_steps, warmup_cosine

__all__ = [
    "RECIPES",
    "Recipe",
    "RecipeData",
    "recipe_data",
    "check_data",
    "blas_threads",
    "one_hot",
]


@dataclass(frozen=True)
class RecipeData:
    """A model's data, in the house layout: one example per position of the last axis."""

    name: str
    x_train: Array | IntArray
    y_train: Array | IntArray
    x_test: Array | IntArray
    y_test: Array | IntArray
    split: SplitRecord | None = None
    """How the examples were split, for a checkpoint to record (``None`` if not recorded)."""


Progress = Callable[[int, float], None]
"""``progress(done, loss)``: called after each epoch or step."""

Fit = Callable[
    [list[Layer], RecipeData, np.random.Generator, list[Any], Progress, int, float | None], History
]
"""``fit(layers, data, rng, states, progress, length, clip) -> history``."""


@dataclass(frozen=True)
class Recipe:
    """One model's row in :data:`RECIPES`."""

    name: str
    """The ``--model`` name."""
    summary: str
    """One line on what the model is."""
    dataset: str
    """The data set it is built for."""
    loss: LossName
    """The loss it is trained with."""
    build: Callable[[np.random.Generator], list[Layer]]
    """Its layers, initialised from a generator."""
    units: str
    """What its training counts: ``"epoch"`` or ``"step"``."""
    length: int
    """How many of them its training runs."""
    fit: Fit
    """``fit(layers, data, rng, states, progress, length, clip) -> history``; trains ``layers``
    (a list it may replace in place) and ``states`` for ``length`` epochs or steps
    (:attr:`units`), clipping the gradients by their global norm at ``clip`` (``None``: not)."""
    threads: int | None = None
    """The BLAS threads its training runs with (:func:`blas_threads`); ``None``: the library's
    default. Its matrices are small: a second thread buys nothing and, on a busy machine,
    costs several times the CPU time in waiting threads."""
    one_hot: bool = False
    """Whether the model reads its data set's token ids one-hot, ``"vocab seq batch"`` floats
    (:func:`one_hot`), rather than as ids."""
    check_data: Callable[[int], RecipeData] | None = None
    """``check_data(seed)``: the data ``gradcheck --model`` draws its batch from, where at the
    training data some parameter's gradient is 0 to within the check's tolerance (its verdict
    would be "nothing to compare"); ``None``: the training data (:func:`recipe_data`)."""


def blas_threads(count: int | None) -> AbstractContextManager[Any]:
    """Run the ``with`` block with at most ``count`` BLAS threads; ``None`` leaves them be.

    Parameters
    ----------
    count
        The most threads NumPy's BLAS (OpenBLAS, MKL, ...) may use for one product.

    Returns
    -------
    context manager
        :func:`threadpoolctl.threadpool_limits` for the BLAS libraries, which restores their
        setting on leaving the block; or a context that does nothing.
    """
    if count is None:
        return nullcontext()
    limits: AbstractContextManager[Any] = threadpool_limits(limits=count, user_api="blas")
    return limits


def _fit_convnet(
    layers: list[Layer],
    data: RecipeData,
    rng: np.random.Generator,
    states: list[Any],
    progress: Progress,
    epochs: int,
    clip: float | None,
) -> History:
    trained, history = train_network(
        layers,
        "cross_entropy",
        data.x_train,
        data.y_train,
        epochs=epochs,
        batch_size=int(CONVNET_TRAINING["batch_size"]),
        learning_rate=CONVNET_TRAINING["learning_rate"],
        momentum=CONVNET_TRAINING["momentum"],
        rng=rng,
        on_epoch=lambda epoch, _, history: progress(epoch, history.loss[-1]),
        train_metrics=False,
        states=states,
        clip=clip,
    )
    layers[:] = trained
    return history


TRANSFORMER_STEPS = 400
"""AdamW steps of the transformer on ``sort`` (its accuracy was ≥ 0.999 on seeds 0–2)."""
TRANSFORMER_BATCH = 64
TRANSFORMER_PEAK_RATE = 3e-3


def _fit_transformer(
    layers: list[Layer],
    data: RecipeData,
    rng: np.random.Generator,
    states: list[Any],
    progress: Progress,
    steps: int,
    clip: float | None,
) -> History:
    schedule = warmup_cosine(TRANSFORMER_PEAK_RATE, steps)
    trained, history = train_steps(
        layers,
        "token_cross_entropy",
        data.x_train,
        data.y_train,
        steps=steps,
        batch_size=TRANSFORMER_BATCH,
        rng=rng,
        # The decay on the weights only: biases, norm gains and embedding tables are exempt,
        # as PyTorch users exempt them with a parameter group of their own.
        optimizer=lambda step: AdamW(
            learning_rate=schedule(step), weight_decay=0.01, exempt=all_but_weights
        ),
        on_step=progress,
        states=states,
        clip=clip,
    )
    layers[:] = trained
    return history


RECURRENT_STEPS = 600
"""Adam steps of the recurrent models on ``recall``. At the defaults below, test accuracy 1.0 was
first reached at step 100–350 by the LSTM (seeds 0–8), 150–200 by the GRU (seeds 0–2) and
150–250 by the tanh RNN on 7 of seeds 0–8 (on seeds 3 and 7 it stalled near 0.25 for 1,000
steps), and held to step 600 (``benchmarks/train_recall.py``, whose model and draws these are)."""
RECURRENT_BATCH = 32
RECURRENT_RATE = 5e-3
"""Adam's learning rate: at 1e-2 the LSTM's loss swung (0.35 to 1.5) before settling, and the tanh
RNN failed on 4 of 9 seeds; at 5e-3 every model learned smoothly where it learned."""


def _fit_recurrent(
    layers: list[Layer],
    data: RecipeData,
    rng: np.random.Generator,
    states: list[Any],
    progress: Progress,
    steps: int,
    clip: float | None,
) -> History:
    trained, history = train_steps(
        layers,
        "token_cross_entropy",
        data.x_train,
        data.y_train,
        steps=steps,
        batch_size=RECURRENT_BATCH,
        rng=rng,
        # Adam: AdamW without decay, PyTorch's betas and eps
        optimizer=lambda step: AdamW(learning_rate=RECURRENT_RATE, weight_decay=0.0),
        on_step=progress,
        states=states,
        clip=clip,
    )
    layers[:] = trained
    return history


RECALL_CHECK_SYMBOLS, RECALL_CHECK_FILLERS = 5, 4
"""The recall sequences the recurrent models are gradient-checked on: the first token one of 5
symbols, every later one one of 4 fillers (ids 5–8), so the one-hot input is the model's 9 wide
and the answer one of its 8 classes.

Not the training data: there every later token is the same blank, and after a few steps of the
same input the state settles to a fixed point ``h* = step(h*, blank)`` (the GRU's
``|h_{t−1} − n_t|`` falls from 0.36 at step 0 to 2e-7 at step 29, by about 0.6 a step). The
GRU's update gate gets ``∂L/∂z_t = ∂L/∂h_t ⊙ (h_{t−1} − n_t)``: about 0 at the last steps, and
at the first steps, where ``h_{t−1} − n_t`` is not, ``∂L/∂h_t`` has shrunk by the same factor
on its way back. Its largest entry is about 4e-8 and most are below the check's ``atol`` of 1e-8
(11 of ``W_ih``'s 288, 6 of ``W_hh``'s 1,024 above it, on 5 sequences): the 16 entries fast mode
samples from each were all within it of 0, and the check compared nothing. Fillers that change
at every step keep the state moving (the update gate's largest entry is then about 3e-3)."""


def _recall_check_data(seed: int) -> RecipeData:
    sequences = recall_dataset(
        seed=seed, symbols=RECALL_CHECK_SYMBOLS, fillers=RECALL_CHECK_FILLERS
    )
    return RecipeData(
        f"{sequences.name} with {RECALL_CHECK_SYMBOLS} symbols and {RECALL_CHECK_FILLERS} fillers",
        one_hot(sequences.x_train, sequences.vocab),
        sequences.y_train,
        one_hot(sequences.x_test, sequences.vocab),
        sequences.y_test,
    )


def _recurrent_recipe(kind: RecurrentKind, summary: str) -> "Recipe":
    return Recipe(
        kind,
        summary,
        "recall",
        "token_cross_entropy",
        lambda rng: recurrent(rng, kind),
        "step",
        RECURRENT_STEPS,
        _fit_recurrent,
        threads=1,
        one_hot=True,
        check_data=_recall_check_data,
    )


RECIPES: dict[str, Recipe] = {
    "convnet": Recipe(
        "convnet",
        "(conv 3×3, batch norm, ReLU, 2×2 max pool) × 2, dense, softmax",
        "digits",
        "cross_entropy",
        lambda rng: convnet(rng),
        "epoch",
        int(CONVNET_TRAINING["epochs"]),
        _fit_convnet,
        threads=1,
    ),
    "transformer": Recipe(
        "transformer",
        "embedding, positions, one causal pre-norm transformer block, layer norm, dense",
        "sort",
        "token_cross_entropy",
        lambda rng: transformer(rng),
        "step",
        TRANSFORMER_STEPS,
        _fit_transformer,
        threads=1,
    ),
    "rnn": _recurrent_recipe(
        "rnn", "tanh RNN (32 units) over the one-hot tokens, its last state, dense; Adam"
    ),
    "lstm": _recurrent_recipe(
        "lstm",
        "LSTM (32 units, forget-gate bias 5) over the one-hot tokens, last state, dense; Adam",
    ),
    "gru": _recurrent_recipe(
        "gru", "GRU (32 units) over the one-hot tokens, its last state, dense; Adam"
    ),
}
"""Every model the command line's ``--model`` knows, besides the perceptron (``mlp``)."""


def one_hot(ids: Int[IntArray, "seq batch"], vocab: int) -> Float[Array, "vocab seq batch"]:
    """Token ids as one-hot columns: ``x[v, s, b] = 1`` where ``ids[s, b] = v``, else 0."""
    return np.ascontiguousarray(np.eye(vocab)[ids].transpose(2, 0, 1))


def recipe_data(recipe: Recipe, seed: int) -> RecipeData:
    """The data set ``recipe`` is for, split with ``seed`` (its tokens one-hot where the recipe
    says :attr:`Recipe.one_hot`)."""
    if recipe.dataset in SEQUENCE_DATASETS:
        sequences = SEQUENCE_DATASETS[recipe.dataset](seed=seed)
        x_train: Array | IntArray = sequences.x_train
        x_test: Array | IntArray = sequences.x_test
        if recipe.one_hot:
            x_train = one_hot(sequences.x_train, sequences.vocab)
            x_test = one_hot(sequences.x_test, sequences.vocab)
        return RecipeData(sequences.name, x_train, sequences.y_train, x_test, sequences.y_test)
    data = load_dataset(recipe.dataset, seed=seed)
    return RecipeData(
        data.name, data.x_train, data.y_train, data.x_test, data.y_test, split=data.split
    )


def check_data(recipe: Recipe, seed: int) -> RecipeData:
    """The data ``gradcheck --model`` checks ``recipe``'s model on (:attr:`Recipe.check_data`,
    or else its training data), split with ``seed``."""
    if recipe.check_data is not None:
        return recipe.check_data(seed)
    return recipe_data(recipe, seed)


def fresh_states(layers: list[Layer]) -> list[Any]:
    """The layers' initial states (batch norm's running statistics)."""
    return initial_states(layers)
