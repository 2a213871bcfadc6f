"""A real PostgreSQL server from Debian's packages, for the JDBC tests.

``start(workdir)`` runs ``initdb`` on a throwaway data folder and starts ``postgres`` on a free
port of 127.0.0.1 only (no Unix socket), with scram-sha-256 password authentication for every
TCP connection, an admin (superuser) and a test user that owns the database ``scoring``; it
returns once the server accepts logins. :meth:`PostgresServer.stop` shuts it down (fast
shutdown, then SIGKILL) and removes the data folder. ``initdb`` and ``postgres`` refuse to run
as root, so as root both run as Debian's ``postgres`` system user (``runuser -u postgres --``)
and the data folder is a fresh folder in the system temp folder owned by that user (pytest's
``tmp_path`` lives under a root-only folder the server could not enter).

Needs ``/usr/lib/postgresql/<version>/bin`` (Debian's ``postgresql`` package; ``.ci/run``
installs it); :func:`binaries` returns None without it and the fixture skips.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ports import free_port

HOST = "127.0.0.1"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
DATABASE = "scoring"
ADMIN = "scoring_admin"
USER = "scoring_user"
SYSTEM_USER = "postgres"  # Debian's account for the server when the tests run as root


def binaries() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding ``initdb`` and ``postgres``, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    for initdb in reversed(found):
        folder = Path(initdb).parent
        if (folder / "postgres").exists() and (folder / "psql").exists():
            return folder
    return None


def skip_reason() -> str | None:
    """Why the server cannot start here, or None when it can."""
    if binaries() is None:
        return ("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb); "
                "install Debian's postgresql package (.ci/run does)")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            return f"running as root and there is no {SYSTEM_USER!r} system user to run PostgreSQL as"
    return None


@dataclass
class PostgresServer:
    """A running PostgreSQL server.

    Attributes:
        port: its TCP port on 127.0.0.1.
        password: the test user's password (random per server).
        admin_password: the superuser's password (random per server).
        process: the ``postgres`` process (or ``runuser`` around it), leading its own group.
        workdir: the folder holding ``data/`` and ``server.log``, removed by :meth:`stop`.
    """

    port: int
    password: str
    admin_password: str
    process: subprocess.Popen
    workdir: Path
    bin: Path
    database: str = DATABASE
    user: str = USER
    admin: str = ADMIN
    _stopped: bool = field(default=False, repr=False)

    @property
    def url(self) -> str:
        """The JDBC URL of the test database (no credentials)."""
        return f"jdbc:postgresql://{HOST}:{self.port}/{self.database}"

    def psql(self, sql: str, admin: bool = False) -> str:
        """Run ``sql`` with ``psql`` (as the test user, or the superuser) on the test database;
        return its unaligned, tuples-only output.

        Raises:
            RuntimeError: when psql fails; the message holds its error output.
        """
        user, password = (self.admin, self.admin_password) if admin else (self.user, self.password)
        env = {**os.environ, "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "10"}
        result = subprocess.run(
            [str(self.bin / "psql"), "-h", HOST, "-p", str(self.port), "-U", user, "-d", self.database,
             "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql],
            env=env, capture_output=True, text=True, timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"psql failed ({result.returncode}): {result.stderr.strip()}")
        return result.stdout.strip()

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the server log."""
        log = self.workdir / "server.log"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""

    def stop(self) -> None:
        """Shut the server down (SIGINT: fast shutdown; SIGKILL after 30 s) and remove its folder."""
        if self._stopped:
            return
        self._stopped = True
        try:
            if self.process.poll() is None:
                _signal_group(self.process.pid, signal.SIGINT)
                try:
                    self.process.wait(timeout=STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    _signal_group(self.process.pid, signal.SIGKILL)
                    self.process.wait(timeout=STOP_TIMEOUT_S)
            _signal_group(self.process.pid, signal.SIGKILL)  # backends outliving the postmaster
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)


def start(timeout_s: float = START_TIMEOUT_S) -> PostgresServer:
    """Initialise and start a throwaway server; return once the test user can log in.

    Raises:
        RuntimeError: when PostgreSQL is missing, ``initdb`` fails, or the server does not
            accept the test user within ``timeout_s``; the message holds the log's tail.
    """
    reason = skip_reason()
    if reason:
        raise RuntimeError(reason)
    bin_folder = binaries()
    as_root = os.geteuid() == 0
    workdir = Path(tempfile.mkdtemp(prefix="batch-scoring-pg-"))
    try:
        if as_root:
            account = pwd.getpwnam(SYSTEM_USER)
            os.chown(workdir, account.pw_uid, account.pw_gid)
        os.chmod(workdir, 0o700)
        admin_password = secrets.token_urlsafe(18)
        password = secrets.token_urlsafe(18)
        pwfile = workdir / "pwfile"
        pwfile.write_text(admin_password + "\n")
        if as_root:
            os.chown(pwfile, account.pw_uid, account.pw_gid)
        prefix = ["runuser", "-u", SYSTEM_USER, "--"] if as_root else []
        init = subprocess.run(
            [*prefix, str(bin_folder / "initdb"), "-D", str(workdir / "data"), "-U", ADMIN,
             f"--pwfile={pwfile}", "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8",
             "--no-sync"],
            capture_output=True, text=True, timeout=120,
        )
        pwfile.unlink()
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed ({init.returncode}): {init.stderr.strip()[-2000:]}")
        port = free_port()
        log = open(workdir / "server.log", "wb")  # noqa: SIM115 - the server writes to it until stopped
        if as_root:
            os.chown(workdir / "server.log", account.pw_uid, account.pw_gid)
        process = subprocess.Popen(
            [*prefix, str(bin_folder / "postgres"), "-D", str(workdir / "data"),
             "-c", f"listen_addresses={HOST}", "-p", str(port), "-c", "unix_socket_directories=",
             "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
             "-c", "shared_buffers=32MB", "-c", "max_connections=40",
             "-c", "password_encryption=scram-sha-256"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        log.close()
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    server = PostgresServer(port=port, password=password, admin_password=admin_password,
                            process=process, workdir=workdir, bin=bin_folder, database="postgres")
    try:
        _wait_ready(server, timeout_s)
        server.psql(f"CREATE ROLE {USER} LOGIN PASSWORD '{password}'", admin=True)
        server.psql(f"CREATE DATABASE {DATABASE} OWNER {USER}", admin=True)
        server.database = DATABASE
        server.psql("SELECT 1")
    except BaseException:
        server.stop()
        raise
    return server


def _wait_ready(server: PostgresServer, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"postgres exited with status {server.process.returncode}; "
                               f"log tail:\n{server.log_tail()}")
        try:
            server.psql("SELECT 1", admin=True)
            return
        except RuntimeError as error:
            last = str(error)
        time.sleep(0.2)
    raise RuntimeError(f"postgres on port {server.port} did not accept a login within {timeout_s:.0f} s "
                       f"({last}); log tail:\n{server.log_tail()}")


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
