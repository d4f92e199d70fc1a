"""The listening socket of ``poiflow serve --workers``: connections accepted from it have
Nagle's algorithm off (uvicorn's own ``--workers`` socket leaves it on, and every answer
on a kept-alive connection after the first then waits ~40 ms for a delayed ACK)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from poiflow.errors import InputError
from poiflow.serving.processes import listening_socket

from ..conftest import free_port, poiflow


def test_connections_accepted_by_asyncio_have_nagle_off() -> None:
    async def accepted_nodelay() -> int:
        sock = listening_socket("127.0.0.1", 0)
        found: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        class Report(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                accepted = transport.get_extra_info("socket")
                found.set_result(accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await asyncio.get_running_loop().create_server(Report, sock=sock)
        port = sock.getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            return await asyncio.wait_for(found, 10)
        finally:
            writer.close()
            server.close()

    assert asyncio.run(accepted_nodelay()) != 0


def test_a_port_in_use_is_a_clear_error() -> None:
    port = free_port()
    taken = listening_socket("127.0.0.1", port)
    try:
        with pytest.raises(InputError, match=f"cannot listen on 127.0.0.1:{port}"):
            listening_socket("127.0.0.1", port)
    finally:
        taken.close()


def test_serve_on_a_port_in_use_says_so_before_it_loads_the_places(conflated: Path) -> None:
    """One process or several: the port is taken before the run is loaded (uvicorn said
    'serving ...' first, then its own error, and exited 3)."""
    port = free_port()
    taken = listening_socket("127.0.0.1", port)
    try:
        for workers in ("1", "2"):
            ran = poiflow("serve", str(conflated), "--port", str(port), "--workers", workers)
            said = " ".join((ran.stdout + ran.stderr).split())
            assert ran.returncode == 1, said
            assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in said
            assert "another server listens there (pick another with --port)" in said
            assert "serving" not in said
    finally:
        taken.close()
