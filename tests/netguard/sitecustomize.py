"""No network in the tests: a connection to any address outside 127.0.0.0/8 (or ::1) is refused.

The test session puts this folder first on ``PYTHONPATH`` and sets ``MMZOO_NETGUARD_LOG``,
so every Python process the tests start (subprocesses, notebook kernels) imports this
module at start-up, as the test process itself does from ``conftest.py``. A refused
attempt raises ``ConnectionRefusedError`` where it happens (as an offline machine would)
and is also appended to the log, so that the test that caused it fails even when the
code under test catches the error (a download with a fallback, an "am I online?" probe).

Python's sockets are guarded (``connect``, ``connect_ex``, ``sendto``, and name lookups
of anything but this machine); native code that opens its own sockets is not.
"""

import ipaddress
import os
import socket

_LOG_VARIABLE = "MMZOO_NETGUARD_LOG"
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def _is_local(host):
    if host is None or host == "":
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    host = str(host).split("%")[0].strip("[]").lower()
    if host in _LOCAL_NAMES or host == socket.gethostname().lower():
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if getattr(address, "ipv4_mapped", None) is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified


def _refuse(what):
    path = os.environ.get(_LOG_VARIABLE)
    if path:
        with open(path, "a") as log:
            log.write(f"pid {os.getpid()}: {what}\n")
    raise ConnectionRefusedError(f"mmzoo tests run without network: {what} refused (only 127.0.0.1 is allowed)")


def _check(sock, address, verb):
    if sock.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple) and address:
        if not _is_local(address[0]):
            _refuse(f"{verb} to {address[0]}:{address[1] if len(address) > 1 else '?'}")


def install():
    """Guard this process's sockets (idempotent)."""
    if getattr(socket, "_mmzoo_netguard", False):
        return
    connect, connect_ex, sendto, getaddrinfo = (
        socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto, socket.getaddrinfo,
    )

    def guarded_connect(self, address):
        _check(self, address, "connection")
        return connect(self, address)

    def guarded_connect_ex(self, address):
        _check(self, address, "connection")
        return connect_ex(self, address)

    def guarded_sendto(self, data, *args):
        _check(self, args[-1] if args else None, "datagram")
        return sendto(self, data, *args)

    def guarded_getaddrinfo(host, *args, **kwargs):
        if not _is_local(host):
            try:
                ipaddress.ip_address(str(host).split("%")[0].strip("[]"))
            except ValueError:
                _refuse(f"name lookup of {host}")
        return getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = guarded_connect
    socket.socket.connect_ex = guarded_connect_ex
    socket.socket.sendto = guarded_sendto
    socket.getaddrinfo = guarded_getaddrinfo
    socket._mmzoo_netguard = True


if os.environ.get(_LOG_VARIABLE):
    install()
