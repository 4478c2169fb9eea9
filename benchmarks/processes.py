"""Worker processes for the benchmarks: each contender's code runs in a process of its own.

Timing contenders one after another in one process lets them disturb each other: PyTorch's
OpenMP workers keep spinning on the CPU for a while after its last operation, and whatever is
timed next pays for it. Here each contender lives in a long-lived worker process, started with
the same thread settings as every other (``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``,
``MKL_NUM_THREADS`` and, in the worker, ``torch.set_num_threads``) and with
``OMP_WAIT_POLICY=PASSIVE``, so that an OpenMP pool sleeps instead of spinning while it waits.
The parent asks one worker at a time to time a block, and waits for its answer: while one
contender is timed, every other worker is blocked on a read of its pipe.

A worker is the benchmark script itself, run as ``script --worker NAMES --threads N``; it reads
pickled requests ``(operation, *arguments)`` on its standard input and answers each with a
pickled ``("ok", value)`` or ``("error", traceback)`` on what was its standard output (anything
the contenders print goes to standard error instead).
"""

import ctypes
import os
import pickle
import platform
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

ROOT = Path(__file__).resolve().parent.parent
"""The repository whose typedbackprop the workers import (put first on their ``PYTHONPATH``:
another copy installed on the path, such as a main checkout, must not stand in for it)."""

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

MALLOC_SETTINGS = {"MALLOC_MMAP_THRESHOLD_": str(32 * 2**20), "MALLOC_TRIM_THRESHOLD_": str(2**30)}
"""glibc's allocator, told to keep freed memory: by default an array of 128 KiB or more is
``mmap``-ed fresh and its pages faulted in anew at every allocation, or not, depending on a
threshold that moves with the process's history. A step that allocates its temporaries anew
then costs up to twice as much in one process as in another (measured: 0 or 160-190 page faults
per step of the 2-64-64-1 network, for the same code). With these settings no contender pays
page faults after its warm-up; ``--malloc-defaults`` measures with glibc's own settings."""


def checks_settings() -> list[bool]:
    """The check settings to measure: the environment's, if it sets one, else both.

    ``TYPEDBACKPROP_CHECKS`` is read as typedbackprop reads it (``0``, ``false``, ``off``,
    ``no`` turn checks off); unset, the benchmark measures checked and unchecked.
    """
    value = os.environ.get("TYPEDBACKPROP_CHECKS")
    if value is None:
        return [True, False]
    return [value.strip().lower() not in {"0", "false", "off", "no"}]


def environment(
    threads: int | None,
    *,
    passive: bool = True,
    checks: bool | None = None,
    keep_freed_memory: bool = True,
) -> dict[str, str]:
    """The environment of a worker.

    Parameters
    ----------
    threads
        Threads for NumPy's BLAS, MKL and OpenMP; ``None`` leaves every library at its default
        (the set-up of the old, single-process benchmark).
    passive
        Whether to set ``OMP_WAIT_POLICY=PASSIVE`` (idle OpenMP threads sleep).
    checks
        ``TYPEDBACKPROP_CHECKS`` for the worker; ``None`` removes it.
    keep_freed_memory
        Whether to set :data:`MALLOC_SETTINGS`.
    """
    variables = dict(os.environ)
    for name in (*THREAD_VARIABLES, "OMP_WAIT_POLICY", "TYPEDBACKPROP_CHECKS", *MALLOC_SETTINGS):
        variables.pop(name, None)
    if keep_freed_memory:
        variables.update(MALLOC_SETTINGS)
    path = variables.get("PYTHONPATH")
    variables["PYTHONPATH"] = os.pathsep.join([str(ROOT), path] if path else [str(ROOT)])
    if threads is not None:
        variables.update(dict.fromkeys(THREAD_VARIABLES, str(threads)))
    if passive:
        variables["OMP_WAIT_POLICY"] = "PASSIVE"
    if checks is not None:
        variables["TYPEDBACKPROP_CHECKS"] = "1" if checks else "0"
    return variables


class WorkerError(RuntimeError):
    """A request failed in a worker; the message is the worker's traceback."""


class Worker:
    """A contender's process: ask it to set up a problem, to run a step, to time a block."""

    def __init__(self, script: str, names: Sequence[str], threads: int | None, env: dict[str, str]):
        self.names = list(names)
        command = [
            sys.executable,
            script,
            "--worker",
            ",".join(names),
            "--threads",
            str(threads or 0),
        ]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
        )

    def ask(self, operation: str, *arguments: Any) -> Any:
        """Send one request and wait for its answer."""
        assert self.process.stdin is not None and self.process.stdout is not None
        pickle.dump((operation, *arguments), self.process.stdin)
        self.process.stdin.flush()
        try:
            status, value = pickle.load(self.process.stdout)
        except EOFError:
            raise WorkerError(f"worker {self.names} exited with {self.process.wait()}") from None
        if status == "error":
            raise WorkerError(f"in worker {self.names}:\n{value}")
        return value

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            self.process.wait()


def serve(handle: Callable[..., Any]) -> None:
    """The worker's loop: answer requests until the parent closes the pipe."""
    replies: BinaryIO = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stray prints go to standard error, not into the replies
    requests = sys.stdin.buffer
    while True:
        try:
            operation, *arguments = pickle.load(requests)
        except EOFError:
            return
        try:
            reply: tuple[str, Any] = ("ok", handle(operation, *arguments))
        except Exception:
            reply = ("error", traceback.format_exc())
        pickle.dump(reply, replies)
        replies.flush()


def import_package(checks: bool) -> None:
    """In a worker: import typedbackprop from :data:`ROOT`, with checks on or off as asked."""
    import typedbackprop

    where = Path(typedbackprop.__file__).resolve()
    assert where.is_relative_to(ROOT), f"typedbackprop imported from {where}, not from {ROOT}"
    assert typedbackprop.CHECKS_ENABLED is checks, (typedbackprop.CHECKS_ENABLED, checks)


def set_torch_threads(threads: int | None) -> None:
    """In a worker that runs PyTorch: its intra-op threads, as many as NumPy's BLAS has."""
    import torch

    if threads is not None:
        torch.set_num_threads(threads)


CLOCKS: dict[str, Callable[[], float]] = {
    "wall": time.perf_counter,
    "cpu": time.process_time,
}
"""``wall``: elapsed time, what a user waits on a quiet machine. ``cpu``: the CPU time of the
worker process (all its threads), which time slices given to other programs on a busy machine
do not inflate; spinning threads of its own do count."""


def as_numpy(values: Any) -> Any:
    """A copy as a NumPy array (of a PyTorch tensor too)."""
    import numpy as np

    return np.array(values.detach().numpy() if hasattr(values, "detach") else values)


def time_block(step: Callable[[], Any], repeats: int, clock: str = "wall") -> float:
    """Seconds per call of ``step``, over ``repeats`` calls back to back, on ``clock``."""
    now = CLOCKS[clock]
    start = now()
    for _ in range(repeats):
        step()
    return (now() - start) / repeats


def median_and_spread(samples: Sequence[float]) -> tuple[float, float]:
    """The median, and the interquartile range relative to it."""
    median = statistics.median(samples)
    if len(samples) < 4:
        return median, 0.0
    quartiles = statistics.quantiles(samples, n=4)
    return median, (quartiles[2] - quartiles[0]) / median


def heap() -> tuple[int, int] | None:
    """glibc's main heap in this process: the bytes it holds from the system, and how many of
    them are free (``mallinfo2``'s ``arena`` and ``fordblks``); ``None`` without glibc 2.33+.

    Free bytes inside the heap are reused by the next allocations without a page fault; glibc
    gives back only the free memory at the heap's top, once there is more of it than its trim
    threshold.
    """

    class _Mallinfo2(ctypes.Structure):
        _fields_ = [
            (name, ctypes.c_size_t)
            for name in (
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"
            ).split()
        ]

    try:
        function = ctypes.CDLL(None).mallinfo2
    except AttributeError:
        return None
    function.restype = _Mallinfo2
    info = function()
    return int(info.arena), int(info.fordblks)


def machine() -> str:
    """The CPU's model and count, and the load average (other work on the machine)."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores"


def load() -> str:
    """The 1-minute load average, where the system reports one."""
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "unknown"


def versions(with_torch: bool) -> str:
    import numpy as np

    text = f"Python {platform.python_version()}, NumPy {np.__version__}"
    if with_torch:
        import torch

        text += f", PyTorch {torch.__version__}"
    return text


def thread_note(threads: int | None) -> str:
    if threads is None:
        return "library default threads, OMP_WAIT_POLICY unset"
    return (
        f"{threads} thread{'s' if threads != 1 else ''} for BLAS and PyTorch "
        f"({'/'.join(THREAD_VARIABLES)}={threads}, torch.set_num_threads({threads})), "
        "OMP_WAIT_POLICY=PASSIVE"
    )


def malloc_note(keep_freed_memory: bool) -> str:
    if not keep_freed_memory:
        return "glibc malloc's default settings"
    return (
        "glibc malloc keeps freed memory ("
        + ", ".join(f"{name}={value}" for name, value in MALLOC_SETTINGS.items())
        + ")"
    )
