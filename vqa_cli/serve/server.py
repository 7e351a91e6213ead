"""Run the server: load the models, bind (loopback unless given a key), serve until SIGTERM or Ctrl-C.

On SIGTERM uvicorn stops accepting connections and answers every request already accepted,
for up to `Limits.grace` seconds, before it exits. A connection must send its request line and
headers within `Limits.header_timeout` seconds, and at most `Limits.max_connections` are open,
so half-open connections cannot lock clients out.
"""

from __future__ import annotations

import sys

from ..errors import InputError
from .app import Limits, Models, create_app, is_loopback


def check_binding(host: str, api_key: str | None) -> None:
    if not is_loopback(host) and not api_key:
        raise InputError(f"refusing to serve on {host} without an API key: pass --api-key KEY (or set VQA_API_KEY), or bind 127.0.0.1")


def serve(models: list[str], load, *, host: str = "127.0.0.1", port: int = 8765, api_key: str | None = None,
          limits: Limits = Limits(), shipped: list[str] = ()) -> None:
    """Load `models` with `load(name) -> engine`, then serve them on host:port until stopped."""
    import uvicorn

    check_binding(host, api_key)
    check_port(host, port)
    served = Models(models, load, shipped, limits)
    app = create_app(served, host=host, api_key=api_key, limits=limits)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, http=_timed_protocol(limits.header_timeout),
                            timeout_graceful_shutdown=limits.grace, limit_concurrency=limits.max_connections)
    server = _ready_server(config, f"vqa: serving {', '.join(models)} on http://{_url_host(host)}:{port}")
    try:
        server.run()
    except SystemExit:  # uvicorn exits when it cannot bind after all (a race with another process)
        pass
    finally:
        served.close()
    if not server.started:
        raise InputError(f"cannot serve on {host}:{port} (is the port in use?)")


def check_port(host: str, port: int) -> None:
    """Fail in one line, before loading any model, when host:port cannot be bound (in use, or not an address here)."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as e:
            raise InputError(f"cannot serve on {host}:{port}: {e.strerror or e}") from None


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _ready_server(config, line: str):
    """A uvicorn.Server that says, once it listens, where it serves."""
    import uvicorn

    class ReadyServer(uvicorn.Server):
        async def startup(self, sockets=None):
            await super().startup(sockets)
            if self.started:
                print(line, file=sys.stderr, flush=True)

    return ReadyServer(config)


def _timed_protocol(header_timeout: float):
    """uvicorn's h11 protocol, closing a connection whose request line and headers take longer than `header_timeout`."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class TimedH11Protocol(H11Protocol):
        deadline = None

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE and self.deadline is not None:  # the headers are in
                self.deadline.cancel()
                self.deadline = None

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()  # a kept-alive connection gets the same time for its next request's headers

        def connection_lost(self, exc) -> None:
            if self.deadline is not None:
                self.deadline.cancel()
            super().connection_lost(exc)

        def _arm(self) -> None:
            if self.deadline is not None:
                self.deadline.cancel()
            self.deadline = self.loop.call_later(header_timeout, self._expire)

        def _expire(self) -> None:
            self.deadline = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.close()

    return TimedH11Protocol
