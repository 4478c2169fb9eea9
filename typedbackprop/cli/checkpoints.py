"""What ``train`` checks of its files before any time is spent, for every ``--model``.

The files a run writes (``--save``, ``--plot``, ``--animate``) must have their ending in an
existing directory before training starts; a checkpoint loaded for evaluation or further
training must have been tested on the examples it is about to be tested on.
"""

import argparse

from typedbackprop.checkpoint import SplitData, SplitMismatchError, check_split
from typedbackprop.cli.options import UsageError, warn
from typedbackprop.datasets import SplitRecord
from typedbackprop.plots import check_image_path

__all__ = ["PLOT_SUFFIXES", "check_paths", "check_recorded_split"]

PLOT_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg")
"""The image formats ``--plot`` writes, by file name ending."""

PATHS: dict[str, tuple[str, ...]] = {
    "plot": PLOT_SUFFIXES,
    "animate": (".gif",),
    "save": (".npz",),
}
"""Each option that names a file to write (by argparse ``dest``), and the endings it takes."""


def check_paths(args: argparse.Namespace) -> None:
    """Refuse a file to write with another ending, in no directory, or that is a directory.

    Raises
    ------
    UsageError
        ``t.txt: the file name must end in .npz``, ``absent/c.npz: there is no directory
        absent``. (``--load`` is read before training, and a missing file is a failure to
        run, status 1, like an unreadable one.)
    """
    try:
        for dest, suffixes in PATHS.items():
            path = getattr(args, dest, None)
            if path is not None:
                check_image_path(path, suffixes)
    except ValueError as error:
        raise UsageError(str(error)) from None


def check_recorded_split(
    path: str, recorded: SplitRecord | None, data: SplitData, seed_given: bool
) -> None:
    """Refuse a checkpoint tested on other examples than ``data``'s test part; warn if unknown.

    Parameters
    ----------
    path
        The checkpoint's file, for the message.
    recorded
        The split it records (``None``: it records none).
    data
        The data it is about to be evaluated or trained further on.
    seed_given
        Whether ``--seed`` was given (then a different seed is what the user must change).

    Raises
    ------
    UsageError
        When the splits' settings differ: the test examples would include training examples.
    """
    try:
        warning = check_split(recorded, data)
    except SplitMismatchError as error:
        if recorded is not None and data.split is not None and seed_given:
            if recorded.seed != data.split.seed:
                raise UsageError(
                    f"{path} was trained and tested on the {recorded.dataset} split of --seed "
                    f"{recorded.seed}; --seed {data.split.seed} would test it on examples it "
                    f"trained on: leave --seed out, or give --seed {recorded.seed}"
                ) from None
        raise UsageError(f"{path}: {error}") from None
    if warning is not None:
        warn(f"{path}: {warning}")
