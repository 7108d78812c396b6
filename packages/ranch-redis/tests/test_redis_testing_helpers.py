"""The server helpers of ``ranch_redis.testing`` on their own failure paths."""

from __future__ import annotations

import socket

import pytest
from ranch_redis import testing


def test_a_bound_port_is_not_free_and_no_cluster_port_is_found_when_none_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        taken = int(sock.getsockname()[1])
        assert testing._port_is_free(taken) is False
    monkeypatch.setattr(testing, "_port_is_free", lambda port: False)
    with pytest.raises(RuntimeError, match="no free pair of ports"):
        testing.free_cluster_port()
