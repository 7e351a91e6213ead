"""Run the server: load the models, bind (loopback unless given a key), serve until SIGTERM or Ctrl-C.

uvicorn finishes the requests in flight before it exits.
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
    served = Models(models, load, shipped)
    app = create_app(served, host=host, api_key=api_key, limits=limits)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=30, access_log=False)
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
