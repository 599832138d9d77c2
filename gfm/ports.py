"""A free TCP port on loopback, for the servers the project starts beside itself."""

from __future__ import annotations

import socket


def free_local_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
