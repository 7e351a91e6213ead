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
