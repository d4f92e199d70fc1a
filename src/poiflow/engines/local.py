"""The local engine: run a partitioned task on this machine's cores, results in order.

A partitioned task is a function ``task(part, parts)`` that yields ``(chunk, result)`` for
every chunk ``c`` of the input with ``c % parts == part``, in increasing ``c``. With one part
it runs in this process; with several, each part runs in its own process and the results
come back merged in chunk order, so the output does not depend on how many parts ran.
Memory stays flat: each worker may run at most ``ahead`` chunks ahead of the consumer.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import traceback
from collections.abc import Callable, Iterator
from typing import Any, Final, TypeAlias, TypeVar

__all__ = ["PartitionTask", "run_partitioned"]

Result = TypeVar("Result")
PartitionTask: TypeAlias = Callable[[int, int], Iterator[tuple[int, Result]]]

_DONE: Final = "done"
_ERROR: Final = "error"
_CHUNK: Final = "chunk"
_POLL_S: Final = 1.0


def run_partitioned(
    task: PartitionTask[Result], parts: int = 1, *, ahead: int = 2
) -> Iterator[Result]:
    """Yield the task's results in chunk order, computed by ``parts`` processes.

    Args:
        task: A picklable top-level function ``task(part, parts)``; see the module doc.
        parts: How many processes; 1 runs the task here, with no pool at all.
        ahead: How many finished chunks a worker may hold before the consumer takes them.

    Raises:
        Whatever the task raised, re-raised here with the worker's traceback attached.
    """
    if parts <= 1:
        for _chunk, result in task(0, 1):
            yield result
        return
    context = mp.get_context("spawn")
    queues = [context.Queue(maxsize=ahead) for _ in range(parts)]
    workers = [
        context.Process(target=_work, args=(task, part, parts, queues[part]), daemon=True)
        for part in range(parts)
    ]
    for worker in workers:
        worker.start()
    try:
        chunk = 0
        while True:
            message = _receive(queues[chunk % parts], workers[chunk % parts])
            kind = message[0]
            if kind == _ERROR:
                error, trace = message[1], message[2]
                error.add_note(f"in a worker process:\n{trace}")
                raise error
            if kind == _DONE:
                break
            got_chunk, result = message[1], message[2]
            if got_chunk != chunk:  # pragma: no cover - a broken task
                msg = f"partition task yielded chunk {got_chunk}, expected {chunk}"
                raise RuntimeError(msg)
            yield result
            chunk += 1
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
        for worker in workers:
            worker.join(timeout=5)


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


def _work(task: PartitionTask[Any], part: int, parts: int, channel: Any) -> None:
    try:
        for chunk, result in task(part, parts):
            channel.put((_CHUNK, chunk, result))
        channel.put((_DONE,))
    except BaseException as exc:
        channel.put((_ERROR, exc, traceback.format_exc()))
