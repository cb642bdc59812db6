"""What the server's transport tweaks change (chatcore/api/transport.py); the real server's
uncompressed replies are checked in test_api_server.py."""

from __future__ import annotations

import os
import socket

from chatcore.api.transport import accept_without_delay


def accepted_nodelay(listener: socket.socket) -> int:
    with socket.create_connection(listener.getsockname()) as client:
        connection, _ = listener.accept()
        with connection:
            client.sendall(b".")
            return connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_connections_to_a_listener_bound_as_streamlit_binds_it_get_no_nagle_delay() -> None:
    with socket.socket(socket.AF_INET) as listener, socket.socket(socket.AF_INET) as other:
        for sock in (listener, other):  # protocol 0, as Streamlit's server binds it
            sock.bind(("127.0.0.1", 0))
            sock.listen()
        assert accepted_nodelay(listener) == 0, "the kernel's default: Nagle on"
        assert accept_without_delay(listener.getsockname()[1]) == 1
        assert accepted_nodelay(listener) != 0
        assert accepted_nodelay(other) == 0, "another port's listener is left alone"


def test_looking_for_the_listener_leaves_no_file_open() -> None:
    before = len(os.listdir("/proc/self/fd"))
    accept_without_delay(1)  # no listener there: every open file is looked at and let go
    assert len(os.listdir("/proc/self/fd")) == before
