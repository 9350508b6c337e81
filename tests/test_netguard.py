"""The tests run the same online and offline: no connection leaves 127.0.0.1 (tests/conftest.py)."""

import os
import socket
import subprocess
import sys

import pytest


def test_a_connection_outside_loopback_is_refused_and_recorded(refused_connections):
    with pytest.raises(ConnectionRefusedError, match="without network: connection to 192.0.2.1:80 refused"):
        socket.create_connection(("192.0.2.1", 80), timeout=1)
    with pytest.raises(ConnectionRefusedError, match="name lookup of example.com refused"):
        socket.getaddrinfo("example.com", 443)
    assert [line.split(": ", 1)[1] for line in refused_connections.take()] == [
        "connection to 192.0.2.1:80",
        "name lookup of example.com",
    ]


def test_a_caught_refusal_still_fails_the_test(refused_connections):
    """An "am I online?" probe that swallows the error is caught by the log, not the exception."""
    try:
        socket.create_connection(("198.51.100.7", 443), timeout=1).close()
    except OSError:
        pass
    assert len(refused_connections.take()) == 1  # the fixture would fail the test with this line


def test_subprocesses_are_guarded_too(refused_connections):
    code = "import urllib.request; urllib.request.urlopen('http://192.0.2.1/', timeout=2)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "mmzoo tests run without network" in result.stderr
    (line,) = refused_connections.take()
    assert line.endswith("connection to 192.0.2.1:80") and line != f"pid {os.getpid()}: connection to 192.0.2.1:80"


def test_loopback_is_allowed():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    try:
        client = socket.create_connection(server.getsockname(), timeout=5)
        client.close()
    finally:
        server.close()
    assert os.environ["KERAS_HOME"].endswith("keras-home")
