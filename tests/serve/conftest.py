"""Real `vqa serve` processes on free loopback ports, for the server and client tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

KEY = "test-key-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def vqa_command() -> str:
    return str(Path(sys.executable).parent / "vqa")


def start(model: Path, *extra: str, env: dict | None = None):
    """A `vqa serve` process serving `model`; returns (process, url) once it says it is serving."""
    port = free_port()
    process = subprocess.Popen(
        [vqa_command(), "serve", "-m", str(model), "--port", str(port), *extra],
        stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "VQA_DEVICE": "cpu", **(env or {})},
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        line = process.stderr.readline()
        if "vqa: serving" in line:
            return process, f"http://127.0.0.1:{port}", line
        if process.poll() is not None:
            raise RuntimeError(f"vqa serve exited: {line}{process.stderr.read()}")
    process.kill()
    raise RuntimeError("vqa serve did not start")


@pytest.fixture(scope="session")
def server(tiny_bundle):
    process, url, line = start(tiny_bundle)
    yield url, line
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="session")
def keyed_server(tiny_bundle):
    process, url, _ = start(tiny_bundle, "--api-key", KEY)
    yield url
    process.terminate()
    process.wait(timeout=30)


def serve_in_thread(model: Path, limits):
    """A server with custom limits in this process (uvicorn in a thread); returns (url, stop)."""
    import threading

    import uvicorn

    from vqa_cli.backends.registry import load_engine
    from vqa_cli.serve.app import Models, create_app
    from vqa_cli.serve.server import _timed_protocol

    port = free_port()
    app = create_app(Models([str(model)], lambda name: load_engine(name, device="cpu"), limits=limits), limits=limits)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", http=_timed_protocol(limits.header_timeout),
                            limit_concurrency=limits.max_connections, timeout_graceful_shutdown=limits.grace)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started and time.time() < deadline:
        time.sleep(0.05)

    def stop():
        server.should_exit = True
        thread.join(timeout=30)

    return f"http://127.0.0.1:{port}", stop


@pytest.fixture(scope="session")
def small_server(tiny_bundle):
    """A server whose limits are small enough to reach with small images: 300 KB bodies, 0.2 MP per request."""
    from vqa_cli.serve.app import Limits

    limits = Limits(max_body=300_000, max_pixels=200_000, max_replay_questions=5, header_timeout=0.5, max_connections=6,
                    session_idle=2.0, max_held=3_000_000)
    url, stop = serve_in_thread(tiny_bundle, limits)
    yield url, limits
    stop()


@pytest.fixture(scope="session")
def vlm_server(tmp_path_factory):
    """A server of a tiny random vision-language model (SmolVLM's architecture): (url, its folder)."""
    from tests.backends.tiny_vlm import build_idefics3

    folder = build_idefics3(tmp_path_factory.mktemp("vlm") / "idefics3")
    process, url, _ = start(folder)
    yield url, folder
    process.terminate()
    process.wait(timeout=30)
