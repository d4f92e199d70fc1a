"""The local engine: run a partitioned task on this machine's cores, results in order.

A partitioned task is a function ``task(part, parts)`` that yields ``(chunk, result)`` for
its share of the input's chunks, in increasing ``chunk``; together the parts yield every
chunk once. Most split the chunks ``c`` with ``c % parts == part``; the numbers need not
run without gaps (an OSM extract's ways are numbered after its nodes, however many). With
one part it runs in this process; with several, each part runs in its own process and the
results come back merged in chunk order, so the output does not depend on how many parts
ran.
Memory stays flat: each worker may run at most ``ahead`` chunks ahead of the consumer.

Where the platform has one (Linux), workers are forked from a server process that has
already imported what they run (:func:`prepare_workers`): a worker then starts in a few
milliseconds, where a fresh interpreter takes about 0.6 s to import its way there.
Elsewhere each worker is a fresh interpreter (spawn). Either way a worker shares nothing
with the process that started it but the task it is handed.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing as mp
import queue
import sys
import threading
import traceback
import types
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from typing import Any, Final, TypeAlias, TypeVar

from poiflow._imports import Unimportable

__all__ = [
    "FORKED_WORKERS",
    "PartitionTask",
    "prepare_workers",
    "release_workers",
    "run_partitioned",
]

Result = TypeVar("Result")
PartitionTask: TypeAlias = Callable[[int, int], Iterator[tuple[int, Result]]]

_DONE: Final = "done"
_ERROR: Final = "error"
_CHUNK: Final = "chunk"
_POLL_S: Final = 1.0
_STOP_S: Final = 2.0  # how long the fork server may take to stop before it is killed
_KILL_S: Final = 5.0  # how long a terminated worker may take to end before it is killed


FORKED_WORKERS: Final = "forkserver" in mp.get_all_start_methods()
"""Whether workers are forked from a prepared server (cheap to start) or spawned."""


def _context() -> Any:
    return mp.get_context("forkserver" if FORKED_WORKERS else "spawn")


_stopping: threading.Thread | None = None
"""The side thread of the last ``release_workers(wait=False)``, until it is waited for."""


def _await_stop() -> None:
    """Wait for a fork server being stopped on a side thread to have ended. Starting a
    worker checks that the server runs and then asks it for a fork, without holding the
    server's lock in between: a stop begun meanwhile would end the server under the
    request (the worker's start fails with "unexpected EOF")."""
    global _stopping
    if _stopping is not None:
        _stopping.join()
        _stopping = None


def prepare_workers(modules: Sequence[str]) -> None:
    """Start the process workers are forked from, importing ``modules`` there, now: while
    this process goes on, so that the first pool does not wait for it. Does nothing where
    workers are spawned, or once the server runs (its imports are then what it has). A
    module that is not installed is skipped."""
    if not FORKED_WORKERS:
        return
    from multiprocessing import forkserver

    _await_stop()
    forkserver.set_forkserver_preload(list(modules))
    forkserver.ensure_running()


def release_workers(*, wait: bool = True) -> None:
    """Stop the process workers are forked from (it holds its imports, ~100 MiB), when no
    pool is running (while a worker runs, it is left as it is): the stages after reading
    need the memory more. The next pool starts it again.

    Args:
        wait: Wait until it has ended. Its exit takes ~0.15 s (its interpreter unloading
            what it imported); without waiting, a side thread waits for it, and the next
            pool, or the next ``prepare_workers``, waits for that (``_await_stop``).
    """
    if not FORKED_WORKERS:
        return
    import multiprocessing
    from multiprocessing import forkserver

    if not hasattr(forkserver._forkserver, "_forkserver_pid"):  # not CPython's server
        return
    if multiprocessing.active_children():
        # A worker still runs (a pool not closed): the server waits for its workers to
        # end. Left running, for them.
        return
    global _stopping
    _await_stop()
    if wait:
        _stop_server()
    else:
        _stopping = threading.Thread(target=_stop_server, name="poiflow-stop-workers", daemon=True)
        _stopping.start()


def _stop_server() -> None:
    """Stop the fork server as CPython's ``ForkServer._stop`` does, but never wait on it
    for more than ``_STOP_S``: kill it then.

    The server ends once every holder of this process's "alive" pipe has closed it, and
    each worker it forked holds one. A worker this process no longer knows of (its pool's
    generator dropped but not yet collected, the worker blocked handing over a chunk)
    would keep the server running, and ``_stop`` would wait for it with the server's lock
    held: every later pool, which takes that lock to start, would wait forever (a test
    run hung so, twice). Killing the server leaves such a worker to its pool, and the next
    pool starts a new server.
    """
    import contextlib
    import os
    import signal
    import time
    from multiprocessing import forkserver, util

    server: Any = forkserver._forkserver
    with server._lock:
        pid = server._forkserver_pid
        if pid is None:
            return
        os.close(server._forkserver_alive_fd)  # asks it to stop
        server._forkserver_alive_fd = None
        deadline = time.monotonic() + _STOP_S
        while not os.waitpid(pid, os.WNOHANG)[0]:
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                break
            time.sleep(0.005)
        server._forkserver_pid = None
        address = server._forkserver_address
        server._forkserver_address = None
        if address and not util.is_abstract_socket_namespace(address):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(address)


def run_partitioned(
    task: PartitionTask[Result],
    parts: int = 1,
    *,
    ahead: int = 2,
    unused: Sequence[str] = (),
) -> Generator[Result, None, None]:
    """Yield the task's results in chunk order, computed by ``parts`` processes.

    Args:
        task: A picklable top-level function ``task(part, parts)``; see the module doc.
        parts: How many processes; 1 runs the task here, with no pool at all.
        ahead: How many finished chunks a worker may hold before the consumer takes them.
        unused: Packages the task never uses, which its workers (not this process, with
            one part) then cannot import: a library that imports one only to ask whether
            a value is one of its objects sees it as not installed. pyarrow imports
            pandas (0.3 s) the first time it converts a list.

    Raises:
        Whatever the task raised, re-raised here with the worker's traceback attached.
    """
    if parts <= 1:
        for _chunk, result in task(0, 1):
            yield result
        return
    _await_stop()
    context = _context()
    queues = [context.Queue(maxsize=ahead) for _ in range(parts)]
    workers = [
        context.Process(
            target=_work, args=(task, part, parts, queues[part], tuple(unused)), daemon=True
        )
        for part in range(parts)
    ]
    with _main_left_behind(task):
        for worker in workers:
            worker.start()
    try:
        # Each worker's next chunk: the lowest of them is the next in order.
        heads: dict[int, tuple[int, Any]] = {}
        live = set(range(parts))
        last = -1
        while live or heads:
            for part in live - heads.keys():
                message = _receive(queues[part], workers[part])
                if message[0] == _ERROR:
                    error, trace = message[1], message[2]
                    error.add_note(f"in a worker process:\n{trace}")
                    raise error
                if message[0] == _DONE:
                    live.discard(part)
                else:
                    heads[part] = (message[1], message[2])
            if not heads:
                break
            part = min(heads, key=lambda p: heads[p][0])
            chunk, result = heads.pop(part)
            if chunk <= last:  # pragma: no cover - a broken task
                msg = f"partition task yielded chunk {chunk} after chunk {last}"
                raise RuntimeError(msg)
            last = chunk
            yield result
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
        for worker in workers:
            worker.join(timeout=_KILL_S)
            if worker.is_alive():  # SIGTERM ignored (a signal disposition inherited)
                worker.kill()
                worker.join(timeout=_KILL_S)


@contextlib.contextmanager
def _main_left_behind(task: object) -> Iterator[None]:
    """Start workers without the script that runs poiflow.

    A worker that is not a fork of this process first runs the script's top level again
    (as ``__mp_main__``), so that what the task refers to there can be unpickled: a script
    that calls ``poiflow.ingest`` outside an ``if __name__ == "__main__":`` guard would
    start its workers' own ingests, and fail with a page of tracebacks. poiflow's tasks
    need nothing of the script, so while the workers start it is not there for them to
    run; unless the task does refer to it (a source class of the user's own, defined in
    the script), which then needs the guard, as Python's ``multiprocessing`` says.
    """
    main = sys.modules.get("__main__")
    if main is None or _refers_to_main(task) or not hasattr(main, "__file__"):
        yield
        return
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def _refers_to_main(value: object, depth: int = 3) -> bool:
    """Whether a task (a function, a ``functools.partial`` of one, its arguments, tuples
    and lists of them) refers to anything defined in ``__main__``."""
    if "__main__" in (getattr(value, "__module__", None), type(value).__module__):
        return True
    if depth == 0:
        return False
    if isinstance(value, functools.partial):
        parts: Iterable[object] = (value.func, *value.args, *value.keywords.values())
    elif isinstance(value, tuple | list):
        parts = value
    else:
        return False
    return any(_refers_to_main(part, depth - 1) for part in parts)


def _receive(channel: Any, worker: Any) -> tuple[Any, ...]:
    while True:
        try:
            message: tuple[Any, ...] = channel.get(timeout=_POLL_S)
        except queue.Empty:
            if not worker.is_alive():
                msg = f"a worker process died (exit code {worker.exitcode})"
                raise RuntimeError(msg) from None
            continue
        return message


def _work(
    task: PartitionTask[Any], part: int, parts: int, channel: Any, unused: tuple[str, ...] = ()
) -> None:
    if unused:  # for good: the worker is the task's
        sys.meta_path.insert(0, Unimportable(unused))
    try:
        for chunk, result in task(part, parts):
            channel.put((_CHUNK, chunk, result))
        channel.put((_DONE,))
    except BaseException as exc:
        channel.put((_ERROR, exc, traceback.format_exc()))
