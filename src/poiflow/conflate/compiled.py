"""LightGBM trees compiled to machine code: the same predictions, several times faster.

LightGBM walks its trees as data at prediction time, and at a million records prediction
is one of the run's largest costs. lleaves compiles a booster's trees with LLVM into one
native function per forest; its predictions agree with ``Booster.predict`` to rounding (a
test holds them to it). Compiling takes a few seconds (about 4 s for the default model's
120 trees), so the object code is kept in a cache folder, keyed by the model text and the
compiler's version and this machine's CPU: each model is compiled once per machine.

Where lleaves or llvmlite cannot be imported, :func:`compiled_trees` answers None and the
matcher predicts with LightGBM itself.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path
from typing import Any, Final

import numpy as np

__all__ = ["CompiledTrees", "cache_folder", "compiled_trees"]

CACHE_ENV: Final = "POIFLOW_CACHE_DIR"
"""The environment variable naming the folder for compiled models (default: the user's
cache folder, ``$XDG_CACHE_HOME/poiflow`` or ``~/.cache/poiflow``)."""

_CHUNK_ROWS: Final = 1 << 16  # rows a thread converts to float64 at a time: ~9 MB for 18 features
_PARALLEL_ROWS: Final = 10_000  # fewer rows are predicted on the calling thread
_lock = threading.Lock()


def cache_folder() -> Path:
    """Where compiled models are kept."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]) / "compiled"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "poiflow" / "compiled"


class CompiledTrees:
    """A booster's trees as one native function: ``predict`` of feature columns."""

    def __init__(self, model: Any) -> None:
        self._model = model

    def predict(self, columns: list[np.ndarray], threads: int = 2) -> np.ndarray:
        """What ``Booster.predict`` gives for the rows of these feature columns (for a
        binary model, the probability before the matcher's calibration).

        The rows go in chunks to ``threads`` threads, each of which copies its chunk into
        one row-major buffer of its own and predicts it (both without the GIL): the copy
        is shared out too, and the buffer stays in cache instead of faulting in a matrix of
        every row.
        """
        rows = len(columns[0]) if columns else 0
        out = np.empty(rows, dtype=np.float64)
        chunks = [(a, min(rows, a + _CHUNK_ROWS)) for a in range(0, rows, _CHUNK_ROWS)]
        jobs = max(1, min(threads, len(chunks))) if rows >= _PARALLEL_ROWS else 1

        def work(mine: list[tuple[int, int]]) -> None:
            buffer = np.empty((min(rows, _CHUNK_ROWS), len(columns)), dtype=np.float64)
            for start, stop in mine:
                matrix = buffer[: stop - start]
                for j, column in enumerate(columns):
                    matrix[:, j] = column[start:stop]
                out[start:stop] = self._model.predict(matrix, n_jobs=1)

        if jobs == 1:
            work(chunks)
            return out
        with ThreadPoolExecutor(jobs, thread_name_prefix="poiflow-trees") as pool:
            list(pool.map(work, [chunks[k::jobs] for k in range(jobs)]))
        return out


def _cache_key(model_text: str) -> str:
    import llvmlite.binding as llvm

    versions = "|".join(metadata.version(name) for name in ("lleaves", "llvmlite"))
    host = f"{llvm.get_host_cpu_name()}|{llvm.get_host_cpu_features().flatten()}"
    return hashlib.sha256(f"{versions}|{host}|{model_text}".encode()).hexdigest()[:32]


def compiled_trees(
    model_text: str,
    *,
    compile_now: bool = True,
    on_compile: Callable[[], None] | None = None,
) -> CompiledTrees | None:
    """The compiled form of a LightGBM model (its ``model_to_string()``).

    Args:
        model_text: The booster's text.
        compile_now: Compile it if it is not in the cache yet (a few seconds); if False,
            answer None unless it is cached.
        on_compile: Called just before the model is compiled (not when it is loaded from
            the cache): a progress display says so.

    Returns:
        The compiled trees, or None when lleaves is not installed, when compiling fails
        (the matcher then predicts with LightGBM), or when it is not cached and
        ``compile_now`` is False.
    """
    try:
        import lleaves
    except ImportError:
        return None
    try:
        folder = cache_folder()
        target = folder / f"{_cache_key(model_text)}.o"
        if not compile_now and not _intact(target, target.with_suffix(".sha256")):
            return None
        with _lock:  # llvmlite's engine set-up is not thread-safe
            model = _load(lleaves, model_text, target, folder, on_compile)
    except Exception:  # any failure of the optional compiler falls back to LightGBM
        return None
    return CompiledTrees(model)


def _load(
    lleaves: Any,
    model_text: str,
    target: Path,
    folder: Path,
    on_compile: Callable[[], None] | None = None,
) -> Any:
    """Load ``target`` into a model, compiling it first when it is not there.

    The object is written through a temporary file, with its SHA-256 beside it, so that a
    process killed while compiling, or two compiling at once, never leave a half-written
    object; LLVM aborts the whole process on a damaged object, so one whose checksum does
    not match is compiled again instead of loaded.
    """
    folder.mkdir(parents=True, exist_ok=True)
    checksum = target.with_suffix(".sha256")
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        text = Path(scratch) / "model.txt"
        text.write_text(model_text, encoding="utf-8")
        model = lleaves.Model(model_file=str(text))
        if _intact(target, checksum):
            model.compile(cache=str(target), raw_score=False)
            return model
        if on_compile is not None:
            on_compile()
        partial = Path(scratch) / target.name
        model.compile(cache=str(partial), raw_score=False)
        digest = Path(scratch) / checksum.name
        digest.write_text(hashlib.sha256(partial.read_bytes()).hexdigest(), encoding="ascii")
        os.replace(partial, target)
        os.replace(digest, checksum)
        return model


def _intact(target: Path, checksum: Path) -> bool:
    """Whether ``target`` is there and is the very object that was written."""
    try:
        expected = checksum.read_text(encoding="ascii").strip()
        return hashlib.sha256(target.read_bytes()).hexdigest() == expected
    except OSError:
        return False
