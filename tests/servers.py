"""Real local servers standing in for the clouds, for tests, benchmarks and demos.

Each runs as its own process on a free loopback port, so a test can kill one
mid-transfer and the pytest process's GIL is not shared with the server.
``settings_for(kind, ...)`` gives the ProviderSettings of a fresh bucket.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from omnifs.providers import ProviderSettings

ROOT = Path(__file__).resolve().parent.parent
AZURITE = ROOT / "node_modules" / ".bin" / "azurite-blob"
AZURE_ACCOUNT = "devstoreaccount1"
AZURE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

#: every provider kind the conformance suite runs over
KINDS = ("s3", "minio", "gs", "az", "file")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


@dataclass
class Server:
    kind: str
    port: int
    proc: subprocess.Popen
    argv: list[str] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def restart(self) -> None:
        """Start again on the same port (the state of an in-memory server is lost)."""
        self.stop()
        self.proc = _spawn(self.argv)
        wait_port(self.port, proc=self.proc)


def _spawn(argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL, start_new_session=True)


def start(kind: str, port: int | None = None) -> Server:
    """Start the server for ``kind`` ("s3" also serves "minio"; "gs"; "az")."""
    port = port or free_port()
    if kind in ("s3", "minio"):
        argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    elif kind == "gs":
        argv = [sys.executable, str(ROOT / "tests" / "gcs_server.py"), str(port)]
    elif kind == "az":
        if not AZURITE.exists():
            raise RuntimeError(f"{AZURITE} is missing: run `npm install` in {ROOT}")
        argv = [str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(port),
                "--inMemoryPersistence", "--silent", "--skipApiVersionCheck",
                "--disableTelemetry", "--loose"]
    else:
        raise ValueError(kind)
    proc = _spawn(argv)
    wait_port(port, proc=proc)
    return Server(kind, port, proc, argv)


def azure_connection_string(endpoint: str) -> str:
    return (f"DefaultEndpointsProtocol=http;AccountName={AZURE_ACCOUNT};AccountKey={AZURE_KEY};"
            f"BlobEndpoint={endpoint}/{AZURE_ACCOUNT};")


def unique_bucket(tag: str = "t") -> str:
    return f"omnifs-{tag}-{uuid.uuid4().hex[:12]}"


def create_bucket(kind: str, endpoint: str, bucket: str) -> None:
    """Create a bucket/container with the raw SDK (the providers never create buckets)."""
    if kind in ("s3", "minio"):
        import boto3

        s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test",
                          aws_secret_access_key="test", region_name="us-east-1")
        s3.create_bucket(Bucket=bucket)
    elif kind == "gs":
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        client = storage.Client(project="test", credentials=AnonymousCredentials(),
                                client_options={"api_endpoint": endpoint})
        client.create_bucket(bucket)
    elif kind == "az":
        from azure.storage.blob import BlobServiceClient

        BlobServiceClient.from_connection_string(
            azure_connection_string(endpoint)).create_container(bucket)
    else:
        raise ValueError(kind)


def settings_for(kind: str, endpoint: str | None, bucket: str, *, name: str | None = None,
                 prefix: str = "", local_root: str | None = None) -> ProviderSettings:
    """ProviderSettings for ``kind`` pointing at ``bucket`` (created beforehand)."""
    name = name or kind
    tail = f"/{prefix}" if prefix else ""
    if kind == "file":
        assert local_root is not None
        return ProviderSettings(name=name, uri=f"file://{local_root}{tail}")
    if kind in ("s3", "minio"):
        return ProviderSettings(name=name, uri=f"{kind}://{bucket}{tail}", endpoint=endpoint,
                                access_key="test", secret_key="test", region="us-east-1",
                                timeout=5.0)
    if kind == "gs":
        return ProviderSettings(name=name, uri=f"gs://{bucket}{tail}", endpoint=endpoint,
                                timeout=5.0)
    if kind == "az":
        return ProviderSettings(name=name, uri=f"az://{bucket}{tail}",
                                connection_string=azure_connection_string(endpoint), timeout=5.0)
    raise ValueError(kind)


@contextlib.contextmanager
def short_body_server(length: int = 100, sent: int = 10):
    """An HTTP server whose every answer is 200 with Content-Length ``length`` and only
    ``sent`` bytes of body before it hangs up; yields its ``http://127.0.0.1:P``."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)

    def serve():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            conn.recv(65536)
            conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {length}\r\nETag: \"e\"\r\n"
                         "Last-Modified: Mon, 30 Nov 2026 10:00:00 GMT\r\n\r\n".encode()
                         + b"x" * sent)
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    finally:
        srv.close()


class CuttableProxy:
    """A TCP proxy in front of a server that a test can freeze or cut.

    Works for every store alike, so "the server went away mid-read" (``cut``)
    and "the server hangs" (``freeze``) are tested the same way for all
    providers.
    """

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._cut = False
        #: set while forwarding is allowed; cleared by freeze()
        self._flowing = threading.Event()
        self._flowing.set()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            if self._cut:
                client.close()
                continue
            with self._lock:
                self._conns.append(client)
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        # a frozen server accepts the connection and then says nothing
        self._wait_flowing()
        if self._cut:
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
        except OSError:
            client.close()
            return
        with self._lock:
            self._conns.append(upstream)
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _wait_flowing(self) -> None:
        while not self._cut and not self._flowing.wait(0.1):
            pass

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while not self._cut:
                self._wait_flowing()
                # small reads so that little is already in flight when a test freezes us
                data = src.recv(16384)
                if not data or self._cut:
                    break
                self._wait_flowing()
                if self._cut:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def freeze(self) -> None:
        """Stop forwarding but keep connections open: a server that hangs."""
        self._flowing.clear()

    def thaw(self) -> None:
        """Forward again after ``freeze``."""
        self._flowing.set()

    def cut(self) -> None:
        """Drop every connection and refuse new ones: a server that died."""
        self._cut = True
        self._flowing.set()
        with self._lock:
            for c in self._conns:
                with contextlib.suppress(OSError):
                    c.shutdown(socket.SHUT_RDWR)
                c.close()
            self._conns.clear()

    def close(self) -> None:
        self.cut()
        self.sock.close()


#: the catalog engines a parametrised catalog (``catalog_backend``) runs on
CATALOG_BACKENDS = ("sqlite", "postgresql")


def catalog_engines() -> tuple[str, ...]:
    """The engines the mount and daemon suites run on: both, or only $OMNIFS_CATALOG
    (sqlite or postgresql) when it is set."""
    chosen = os.environ.get("OMNIFS_CATALOG")
    return (chosen,) if chosen else CATALOG_BACKENDS


def fresh_catalog(engine: str, request, sqlite_file: Path, tag: str = "t") -> Path | str:
    """Where a fresh catalog lives on ``engine``: the SQLite file ``sqlite_file``, or the URL
    of a new empty database of the session's PostgreSQL cluster (the ``postgres`` fixture,
    reached through the test's ``request``). The one place the fixtures decide it."""
    if engine == "postgresql":
        return request.getfixturevalue("postgres").database(tag)
    return sqlite_file


def catalog_url(target: Path | str) -> str:
    """``[catalog] url`` of a catalog target: a SQLite file's path, or a PostgreSQL URL as is."""
    return target if isinstance(target, str) else f"sqlite:///{target}"

#: Debian's PostgreSQL 15 binaries (apt-get install postgresql)
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def postgres_missing() -> str | None:
    """Why this machine cannot start a PostgreSQL cluster, or None."""
    if not (PG_BIN / "initdb").exists():
        return f"PostgreSQL 15 is not installed ({PG_BIN}/initdb is absent: make install-system)"
    if os.geteuid() == 0:
        try:
            import pwd
            pwd.getpwnam("postgres")
        except KeyError:
            return "no `postgres` user to run PostgreSQL as (apt-get install postgresql)"
    return None


def lose_catalog(target: str | Path) -> None:
    """Lose the catalog at ``target`` (``Config.catalog_target()``): a SQLite file with its
    -wal and -shm, or a PostgreSQL database, dropped (its connections cut) and created
    again empty under the same URL."""
    if isinstance(target, Path):
        for suffix in ("", "-wal", "-shm"):
            target.with_name(target.name + suffix).unlink(missing_ok=True)
        return
    from urllib.parse import urlsplit

    import psycopg

    parts = urlsplit(target)
    name = parts.path.lstrip("/")
    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


class PostgresCluster:
    """A throwaway PostgreSQL cluster: ``initdb`` + ``pg_ctl`` on a free port in a temp dir.

    Runs as the ``postgres`` user when the tests run as root (PostgreSQL
    refuses root). Trust authentication on 127.0.0.1 only; fsync off (a test
    cluster dies with its tests). :meth:`stop` and :meth:`start` make an
    outage; :meth:`database` a fresh database per test.
    """

    def __init__(self) -> None:
        import tempfile
        self.dir = Path(tempfile.mkdtemp(prefix="omnifs-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        if os.geteuid() == 0:
            import pwd
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "--no-sync", "-E", "UTF8")
        self._count = 0
        self.start()

    def _run(self, tool: str, *args: str) -> None:
        argv = [str(PG_BIN / tool), *args]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise RuntimeError(f"{tool} failed: {proc.stderr.strip() or proc.stdout.strip()}")

    def start(self) -> None:
        opts = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300")
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.dir / "log"),
                  "-w", "start")

    def stop(self) -> None:
        """Stop the server (fast shutdown: open connections are cut)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def database(self, tag: str = "t") -> str:
        """A new empty database; its URL."""
        import psycopg
        self._count += 1
        name = f"{tag}_{os.getpid()}_{self._count}_{uuid.uuid4().hex[:6]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def destroy(self) -> None:
        import shutil
        with contextlib.suppress(RuntimeError):
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
