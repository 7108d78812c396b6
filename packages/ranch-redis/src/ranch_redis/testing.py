"""Throwaway ``redis-server`` processes on loopback, for tests and benchmarks.

``RedisServer`` starts ``redis-server`` (found on ``PATH``) on 127.0.0.1 and
a free port, with no persistence, and stops it on exit::

    with RedisServer() as server:
        storage = RedisStorage.from_url(server.url)

``TLSRedisServer`` does the same with TLS only (a throwaway CA and server
certificate made with the ``openssl`` command), and ``RedisClusterServers``
starts a Redis Cluster of several masters joined with ``redis-cli --cluster
create``.
"""

from __future__ import annotations

import random
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any, List, Optional, Sequence, Type

import attrs


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_cluster_port() -> int:
    """A free port ``p`` below 55535 whose cluster bus port ``p + 10000`` is free too."""
    rnd = random.Random()  # noqa: S311 - picking test ports, not secrets
    for _ in range(200):
        port = rnd.randrange(20000, 45000)
        if _port_is_free(port) and _port_is_free(port + 10000):
            return port
    raise RuntimeError("no free pair of ports (p, p + 10000) found on 127.0.0.1")


def block_server(admin: Any, url: str, seconds: float = 0.8) -> threading.Thread:
    """Block the server at ``url`` with ``DEBUG SLEEP seconds`` (sent by the redis-py
    client ``admin``; the server needs ``--enable-debug-command local``) and
    return the sleeping thread once the server no longer answers a ping."""
    import redis

    sleeper = threading.Thread(target=admin.execute_command, args=("DEBUG", "SLEEP", str(seconds)))
    sleeper.start()
    probe = redis.Redis.from_url(url, socket_timeout=0.05)
    deadline = time.monotonic() + 5
    try:
        while time.monotonic() < deadline:
            try:
                probe.ping()
            except redis.TimeoutError:
                return sleeper
            time.sleep(0.01)
    finally:
        probe.close()
    sleeper.join()
    raise RuntimeError("the server never blocked")


class RedisServer:
    """One ``redis-server`` bound to 127.0.0.1 only, no RDB/AOF files.

    :meth:`stop` and :meth:`start` may be called again: the server comes back
    on the same port (with an empty dataset).
    """

    def __init__(self, port: Optional[int] = None, extra_args: Sequence[str] = ()) -> None:
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        self.process: Optional[subprocess.Popen[bytes]] = None
        self._dir: Optional[tempfile.TemporaryDirectory[str]] = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def directory(self) -> Path:
        """The server's working directory (exists once started)."""
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="ranch-redis-")
        return Path(self._dir.name)

    def port_args(self) -> List[str]:
        """The listening options: plain TCP on :attr:`port`."""
        return ["--port", str(self.port)]

    def command(self) -> List[str]:
        """The ``redis-server`` command line."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (Debian: apt-get install redis-server)")
        return [
            binary,
            "--bind", "127.0.0.1",
            *self.port_args(),
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.directory),
            "--protected-mode", "yes",
            *self.extra_args,
        ]  # fmt: skip

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start the server and wait until it answers ``PING`` (stopped again if it does not)."""
        self.process = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=0.5)

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Wait until the server answers ``PING``; ``RuntimeError`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with code {self.process.returncode}")
            try:
                with self._connect() as sock:
                    sock.sendall(b"PING\r\n")
                    # A server with a password answers NOAUTH: it is up all the same.
                    if sock.recv(64).startswith((b"+PONG", b"-NOAUTH")):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not answer within {timeout}s")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """Kill the server with SIGKILL (a crash: no shutdown work)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def close(self) -> None:
        """Stop the server and delete its directory."""
        self.stop()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> RedisServer:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()


@attrs.frozen
class TLSFiles:
    """PEM files of a throwaway certificate authority and the server and client
    certificates it signed."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_tls_files(directory: Path) -> TLSFiles:
    """Make a CA, a server certificate for 127.0.0.1/localhost and a client
    certificate with the ``openssl`` command."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("the openssl command is not installed (Debian: apt-get install openssl)")
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = directory / "ca.key", directory / "ca.crt"
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.crt"
    client_key, client_csr, client_cert = (
        directory / "client.key",
        directory / "client.csr",
        directory / "client.crt",
    )
    ext = directory / "server.ext"
    # Extensions as strict verifiers (Python 3.13's default SSL context) demand.
    leaf = (
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyAgreement\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid,issuer\n"
    )
    ext.write_text(leaf + "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n")
    client_ext = directory / "client.ext"
    client_ext.write_text(leaf + "extendedKeyUsage=clientAuth\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    steps = [
        [openssl, "req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(ca_cert), "-days", "2",
         "-subj", "/CN=Ranch test CA", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        [openssl, "req", "-new", *ec, "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1"],
        [openssl, "x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
         "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext)],
        [openssl, "req", "-new", *ec, "-keyout", str(client_key), "-out", str(client_csr),
         "-subj", "/CN=ranch-client"],
        [openssl, "x509", "-req", "-in", str(client_csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
         "-CAcreateserial", "-out", str(client_cert), "-days", "2", "-extfile", str(client_ext)],
    ]  # fmt: skip
    for step in steps:
        subprocess.run(step, check=True, capture_output=True)
    return TLSFiles(
        ca_cert=ca_cert, server_cert=cert, server_key=key, client_cert=client_cert, client_key=client_key
    )


class TLSRedisServer(RedisServer):
    """A ``redis-server`` that speaks TLS only (``--port 0 --tls-port <port>``).

    Clients verify the server with :attr:`tls`'s CA (``ssl_ca_certs``). With
    ``client_certificates=True`` they must also present a certificate signed
    by that CA (``ssl_certfile``/``ssl_keyfile``: :attr:`tls` has one).
    """

    def __init__(
        self, port: Optional[int] = None, extra_args: Sequence[str] = (), *, client_certificates: bool = False
    ) -> None:
        super().__init__(port, extra_args)
        self.client_certificates = client_certificates
        self.tls = make_tls_files(self.directory / "tls")

    @property
    def url(self) -> str:
        """``rediss://127.0.0.1:<port>/0``."""
        return f"rediss://127.0.0.1:{self.port}/0"

    def port_args(self) -> List[str]:
        return [
            "--port", "0",
            "--tls-port", str(self.port),
            "--tls-cert-file", str(self.tls.server_cert),
            "--tls-key-file", str(self.tls.server_key),
            "--tls-ca-cert-file", str(self.tls.ca_cert),
            "--tls-auth-clients", "yes" if self.client_certificates else "no",
        ]  # fmt: skip

    def _connect(self) -> socket.socket:
        context = ssl.create_default_context(cafile=str(self.tls.ca_cert))
        context.load_cert_chain(str(self.tls.client_cert), str(self.tls.client_key))
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=0.5)
        try:
            return context.wrap_socket(raw, server_hostname="127.0.0.1")
        except BaseException:
            raw.close()
            raise


class RedisClusterServers:
    """A Redis Cluster of ``masters`` nodes (no replicas) on loopback.

    Each node is a :class:`RedisServer` with ``--cluster-enabled yes``; they
    are joined with ``redis-cli --cluster create`` and :meth:`start` returns
    once every node reports ``cluster_state:ok``.
    """

    def __init__(self, masters: int = 3) -> None:
        if masters < 3:
            raise ValueError("a Redis Cluster needs at least 3 masters")
        self.nodes: List[RedisServer] = []
        ports: List[int] = []
        while len(ports) < masters:
            port = free_cluster_port()
            if port not in ports and port + 10000 not in ports and port - 10000 not in ports:
                ports.append(port)
        cluster_args = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
        cluster_args += ["--cluster-node-timeout", "5000"]
        self.nodes = [RedisServer(port, cluster_args) for port in ports]

    @property
    def url(self) -> str:
        """URL of the first node (a cluster client discovers the others)."""
        return self.nodes[0].url

    def start(self, timeout: float = 30.0) -> RedisClusterServers:
        """Start the nodes, create the cluster and wait for ``cluster_state:ok``."""
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError("redis-cli is not installed (Debian: apt-get install redis-tools)")
        for node in self.nodes:
            node.start()
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=timeout,
        )
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            while True:
                info = subprocess.run(
                    [cli, "-h", "127.0.0.1", "-p", str(node.port), "cluster", "info"],
                    capture_output=True,
                    text=True,
                    timeout=timeout,
                ).stdout
                if "cluster_state:ok" in info:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"cluster node {node.port} not ok within {timeout}s:\n{info}")
                time.sleep(0.1)
        return self

    def close(self) -> None:
        """Stop every node."""
        for node in self.nodes:
            node.close()

    def __enter__(self) -> RedisClusterServers:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()
