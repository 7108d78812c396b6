"""The server helpers of ``ranch_redis.testing`` on their own failure paths."""

from __future__ import annotations

import contextlib
import socket
import threading
from pathlib import Path
from typing import Iterator

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


def test_a_server_that_exits_at_start_is_reported_and_its_directory_removed() -> None:
    server = testing.RedisServer(extra_args=["--no-such-option", "yes"])
    with pytest.raises(RuntimeError, match=r"^redis-server exited with code \d+"), server:
        pass  # never reached: the server refuses its options
    assert server.process is None and server._dir is None


@contextlib.contextmanager
def not_redis(reply: bytes) -> Iterator[int]:
    """The port of a loopback listener that is not Redis: it answers ``reply`` to anything."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.05)  # accept() wakes up to see the test is over
    over = threading.Event()

    def serve() -> None:
        while not over.is_set():
            try:
                conn, _ = listener.accept()
            except socket.timeout:
                continue
            with conn:
                conn.settimeout(1.0)
                try:
                    conn.recv(64)
                    conn.sendall(reply)
                except OSError:
                    pass  # the prober gave up first

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        over.set()
        thread.join()
        listener.close()


def test_wait_ready_gives_up_on_a_port_that_answers_but_not_as_redis() -> None:
    with not_redis(b"HTTP/1.1 400 Bad Request\r\n\r\n") as port:
        server = testing.RedisServer(port=port)  # not started: no process to watch
        with pytest.raises(RuntimeError, match=r"did not answer within 0\.3s"):
            server.wait_ready(timeout=0.3)
        server.close()


def test_a_tls_probe_of_a_plain_port_closes_its_socket_and_keeps_waiting() -> None:
    with not_redis(b"-ERR not TLS\r\n") as port:
        server = testing.TLSRedisServer(port=port)  # its TLS handshake fails there
        with pytest.raises(RuntimeError, match=r"did not answer within 0\.3s"):
            server.wait_ready(timeout=0.3)
        server.close()


def test_stopping_killing_or_closing_a_server_never_started_does_nothing() -> None:
    server = testing.RedisServer()
    server.stop()
    server.kill()
    server.close()
    assert server.process is None and server._dir is None


def test_missing_commands_are_named_with_their_debian_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no redis-server, redis-cli, openssl
    with pytest.raises(
        RuntimeError, match=r"^redis-server is not installed \(Debian: apt-get install redis-server\)"
    ):
        testing.RedisServer().command()
    with pytest.raises(RuntimeError, match=r"^the openssl command is not installed"):
        testing.make_tls_files(tmp_path / "tls")
    cluster = testing.RedisClusterServers(masters=3)
    with (
        pytest.raises(
            RuntimeError, match=r"^redis-cli is not installed \(Debian: apt-get install redis-tools\)"
        ),
        cluster,
    ):
        pass
    assert all(node.process is None for node in cluster.nodes)


def test_a_cluster_needs_three_masters() -> None:
    with pytest.raises(ValueError, match=r"^a Redis Cluster needs at least 3 masters"):
        testing.RedisClusterServers(masters=2)
