"""Several server processes answering on one port (``poiflow serve --workers N``).

One Python process runs its Python on one core at a time, so on a machine with several
cores the API answers more requests, sooner, from several processes. Each loads the run
itself (memory grows with N) and takes connections from one listening socket.

Why not uvicorn's own ``--workers``: it binds that socket without naming TCP as its
protocol. The connections it accepts then report protocol 0, asyncio turns Nagle's
algorithm off only for sockets that report TCP, and every answer on a kept-alive
connection after the first waits for the client's delayed ACK: about 40 ms on Linux,
whatever the endpoint. The socket here names its protocol.
"""

from __future__ import annotations

import errno
import multiprocessing
import signal
import socket
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

from poiflow.errors import InputError

__all__ = ["listening_socket", "serve_on", "serve_processes"]


def listening_socket(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A TCP socket listening on ``host:port`` whose accepted connections have Nagle's
    algorithm turned off by asyncio (they inherit the protocol it names).

    Raises:
        InputError: It cannot be bound (the port is taken, the address is not this
            machine's); the message says which.
    """
    info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    family, kind, proto, _, address = info[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        hint = (
            ": another server listens there (pick another with --port)"
            if exc.errno == errno.EADDRINUSE
            else ""
        )
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror}{hint}") from None
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def serve_processes(make_app: Callable[[], Any], host: str, port: int, workers: int) -> int:
    """Serve the app ``make_app`` builds from ``workers`` processes on ``host:port`` until
    stopped (SIGTERM or Ctrl-C, passed on to every process, each finishing the requests
    in hand) or until a process fails, which stops the others.

    Args:
        make_app: Builds the ASGI app in each process; it must pickle (a module-level
            function, or a partial of one), as processes are spawned, not forked.
        host: The address to listen on.
        port: The port.
        workers: How many processes.

    Returns:
        The exit status: 0 when stopped, 1 when a process failed.
    """
    sock = listening_socket(host, port)
    context = multiprocessing.get_context("spawn")  # fork would copy polars' thread pools
    children = [
        context.Process(target=_serve, args=(make_app, sock), name=f"poiflow-serve-{i}")
        for i in range(workers)
    ]
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.is_alive():
                child.terminate()  # SIGTERM: uvicorn finishes what it is answering

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for child in children:
            child.start()
        sock.close()  # the children hold it now
        failed = False
        while any(child.is_alive() for child in children):
            for child in children:
                child.join(timeout=0.2)
                if not stopping and child.exitcode not in (None, 0):
                    failed = True
                    stop(signal.SIGTERM, None)
        return 1 if failed else 0
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for child in children:
            if child.is_alive():
                child.kill()
                child.join()


def _serve(make_app: Callable[[], Any], sock: socket.socket) -> None:
    try:
        app = make_app()
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    serve_on(app, sock)


def serve_on(app: Any, sock: socket.socket) -> None:
    """Answer with ``app`` on the listening socket ``sock`` until stopped: SIGTERM or
    Ctrl-C ends the call once uvicorn has answered what it had in hand (as a server of
    ``--workers`` does), not with an error.

    uvicorn stops gently on either signal, then raises it again for the handlers it had
    found, so that they see it too; the ones here take it as the stop it was. A signal
    that comes before uvicorn has set its own handlers stops it as soon as it runs."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))

    def stop(signum: int, frame: FrameType | None) -> None:
        server.should_exit = True

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run(sockets=[sock])
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
