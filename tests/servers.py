"""Throw-away servers for the tests: a PostgreSQL cluster and an nginx reverse proxy, each on a
free loopback port, from Debian's packages (``.ci/run`` installs them when missing).

Both are started by the tests themselves and stopped at the end of the session; nothing here
survives a run. When a binary is missing the tests that need it are skipped with a reason that
names the package.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

#: The Debian user the PostgreSQL package creates; initdb refuses to run as root.
PG_OS_USER = "postgres"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


# --- PostgreSQL ------------------------------------------------------------------------------


def postgres_bin() -> Path | None:
    """The folder with initdb / pg_ctl / postgres, or None when PostgreSQL is not installed."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    return candidates[0].parent if candidates else None


def postgres_missing_reason() -> str | None:
    if postgres_bin() is None:
        return "PostgreSQL is not installed (Debian package `postgresql`; .ci/run installs it)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(PG_OS_USER)
        except KeyError:
            return f"running as root and there is no {PG_OS_USER!r} user to run PostgreSQL as"
    return None


@dataclass
class Postgres:
    """A running throw-away cluster; ``url(db)`` is a ``postgresql://`` URL with a password."""

    root: Path
    port: int
    user: str
    password: str
    _bin: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        _run_as_postgres(
            [str(self._bin / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "stop"],
            check=False,
        )


def _demote() -> Callable[[], None] | None:
    """A preexec_fn that drops root to the postgres user (initdb and postgres refuse root)."""
    if os.geteuid() != 0:
        return None
    entry = pwd.getpwnam(PG_OS_USER)

    def demote() -> None:
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)

    return demote


def _run_as_postgres(args: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        preexec_fn=_demote(),
        capture_output=True,
        text=True,
        timeout=60,
        check=check,
        env={**os.environ, "LC_ALL": "C"},
    )


@contextlib.contextmanager
def postgres_server(root: Path) -> Iterator[Postgres]:
    """initdb + pg_ctl start on a free loopback port, password authentication; stopped after."""
    binaries = postgres_bin()
    assert binaries is not None
    root.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(12)
    (root / "pw").write_text(password + "\n")
    if os.geteuid() == 0:
        entry = pwd.getpwnam(PG_OS_USER)
        os.chown(root, entry.pw_uid, entry.pw_gid)
        os.chown(root / "pw", entry.pw_uid, entry.pw_gid)
    data = root / "data"
    _run_as_postgres(
        [
            str(binaries / "initdb"),
            "-D",
            str(data),
            "-U",
            "bot_admin",
            f"--pwfile={root / 'pw'}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ]
    )
    port = free_port()
    options = (
        f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    )
    _run_as_postgres(
        [
            str(binaries / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(root / "postgres.log"),
            "-w",
            "-t",
            "30",
            "start",
        ]
    )
    server = Postgres(root=root, port=port, user="bot_admin", password=password, _bin=binaries)
    try:
        yield server
    finally:
        server.stop()


# --- nginx -----------------------------------------------------------------------------------


def nginx_binary() -> str | None:
    return shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )


def nginx_missing_reason() -> str | None:
    if nginx_binary() is None:
        return "nginx is not installed (Debian package `nginx`; .ci/run installs it)"
    return None


NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    upstream replicas {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://replicas;
            proxy_set_header Host $host;
            # A replica that is down (connection refused, reset, 502/503/504) is skipped and the
            # request, a Telegram update POST, goes to the next one.
            proxy_next_upstream error timeout http_502 http_503 http_504 non_idempotent;
            proxy_next_upstream_tries 3;
            proxy_connect_timeout 1s;
            proxy_read_timeout 30s;
        }}
    }}
}}
"""


@dataclass
class Nginx:
    port: int
    process: subprocess.Popen[bytes]
    root: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


@contextlib.contextmanager
def nginx_proxy(root: Path, upstream_ports: list[int], port: int | None = None) -> Iterator[Nginx]:
    """nginx on ``port`` (a free loopback port by default) balancing over ``upstream_ports``
    (round robin)."""
    binary = nginx_binary()
    assert binary is not None
    root.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    servers = "\n".join(
        f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;" for p in upstream_ports
    )
    conf = root / "nginx.conf"
    conf.write_text(NGINX_CONF.format(root=root, servers=servers, port=port))
    process = subprocess.Popen(
        [binary, "-p", str(root), "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=open(root / "stderr.log", "wb"),  # noqa: SIM115 (closed with the process)
    )
    proxy = Nginx(port=port, process=process, root=root)
    try:
        wait_for_port(port)
        yield proxy
    finally:
        proxy.stop()
