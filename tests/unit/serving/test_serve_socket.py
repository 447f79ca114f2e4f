"""The model server's socket: clear errors for a busy or bad port, no Nagle delay on accepted connections. Its
process (workers dying with it, stopping its whole process group, failing fast when it exits early) is
tests/integration/test_serve_process.py."""

from __future__ import annotations

import pytest
from helpers import free_port

from textops.core.errors import ParamsError, StateError
from textops.serving.serve import bind_socket


def test_a_busy_or_bad_port_is_a_clear_error():
    sock = bind_socket("127.0.0.1", free_port())
    try:
        port = sock.getsockname()[1]
        with pytest.raises(StateError, match=f"cannot serve on 127.0.0.1:{port}: another process is listening"):
            bind_socket("127.0.0.1", port)
    finally:
        sock.close()
    with pytest.raises(ParamsError, match="1 to 65535"):
        bind_socket("127.0.0.1", 70000)
    with pytest.raises(StateError, match="not an address"):
        bind_socket("no-such-host.invalid", free_port())


def test_accepted_connections_are_not_delayed_by_nagle():
    """asyncio sets TCP_NODELAY only on sockets whose protocol is IPPROTO_TCP: without it every response written
    in two parts waited ~40 ms for the client's delayed ACK."""
    import asyncio
    import socket

    sock = bind_socket("127.0.0.1", free_port())
    seen: dict[str, int] = {}

    class Probe(asyncio.Protocol):
        def connection_made(self, transport):
            seen["nodelay"] = transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            transport.close()

    async def accept_one() -> None:
        server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
        _, writer = await asyncio.open_connection(*sock.getsockname())
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.01)
        writer.close()
        server.close()

    asyncio.run(accept_one())
    assert seen == {"nodelay": 1}
