"""Binding: loopback by default; anything else only with a key."""

import pytest

from vqa_cli.errors import InputError
from vqa_cli.serve.app import is_loopback
from vqa_cli.serve.server import check_binding


def test_loopback_addresses():
    assert all(is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "127.0.0.2"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "192.168.1.4", "example.com"))


def test_other_addresses_need_a_key():
    check_binding("127.0.0.1", None)
    check_binding("0.0.0.0", "a-key")
    with pytest.raises(InputError, match="without an API key"):
        check_binding("0.0.0.0", None)


def test_a_port_in_use_is_one_line_and_exit_1(tiny_bundle):
    import socket
    import subprocess

    from tests.serve.conftest import vqa_command

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run([vqa_command(), "serve", "-m", str(tiny_bundle), "--port", str(port)],
                                capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.startswith("vqa: error: cannot serve on 127.0.0.1:") and result.stderr.count("\n") == 1
