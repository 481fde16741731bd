"""A real PostgreSQL for the job store and fleet tests: ``initdb`` into a temporary folder and ``postgres`` on a
free loopback port (Debian's package ``postgresql``; ``make install`` installs it where it can). PostgreSQL
refuses to run as root: as root the cluster is owned by, and run as, the unprivileged ``nobody``. No fake: when
the binaries are absent, the tests that need them skip, saying so."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


INITDB = _binary("initdb")
POSTGRES = _binary("postgres")
SKIP_REASON = "PostgreSQL is not installed (apt-get install postgresql, or `make install` as root on Debian)"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_user() -> list[str]:
    """The command prefix that runs a server as an unprivileged user when we are root."""
    return ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []


class PostgresServer:
    """``with PostgresServer() as pg:`` serves ``pg.url`` (database ``speechsvc``, user ``speechsvc``, trust on
    loopback); :meth:`stop` and :meth:`start` again (same data) stand for an outage and its recovery."""

    def __init__(self) -> None:
        if INITDB is None or POSTGRES is None:
            raise RuntimeError(SKIP_REASON)
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="speechsvc-pg-"))
        self.data = self.dir / "data"
        self.process: subprocess.Popen[bytes] | None = None
        self.log = self.dir / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgresql://speechsvc@127.0.0.1:{self.port}/speechsvc"

    def fresh_database(self) -> str:
        """A new, empty database on this server (a test of its own); its URL."""
        import uuid

        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url.rsplit("/", 1)[0] + "/" + name

    def _init(self) -> None:
        assert INITDB is not None
        if os.geteuid() == 0:
            shutil.chown(self.dir, "nobody")
        subprocess.run([*_as_user(), INITDB, "-D", str(self.data), "-U", "speechsvc", "--auth=trust",
                        "--no-sync", "-E", "UTF8"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> None:
        assert POSTGRES is not None
        if not self.data.exists():
            self._init()
        log = open(self.log, "ab")
        self.process = subprocess.Popen(
            [*_as_user(), POSTGRES, "-D", str(self.data), "-h", "127.0.0.1", "-p", str(self.port), "-k", str(self.dir),
             "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
             "-c", "max_connections=50", "-c", "shared_buffers=16MB"],
            stdout=subprocess.DEVNULL, stderr=log)
        log.close()
        deadline = time.time() + 30
        created = False
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited: {self.log.read_text()[-2000:]}")
            try:
                import psycopg

                if not created:
                    with psycopg.connect(f"postgresql://speechsvc@127.0.0.1:{self.port}/postgres",
                                         autocommit=True, connect_timeout=2) as conn:
                        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = 'speechsvc'").fetchone()
                        if not exists:
                            conn.execute("CREATE DATABASE speechsvc")
                    created = True
                with psycopg.connect(self.url, connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"postgres did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGINT)  # "fast" shutdown (SIGTERM, "smart", waits for clients)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
            self.process = None

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
