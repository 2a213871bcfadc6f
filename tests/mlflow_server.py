"""A real MLflow tracking server in a subprocess, for integration tests.

``start_tracking_server(workdir)`` runs ``python -m mlflow server`` (this interpreter's mlflow)
bound to 127.0.0.1 on a free port, with a SQLite backend store (``<workdir>/mlflow.db``) and
proxied artifact serving from ``<workdir>/artifacts``, and returns once ``GET /health``
answers. The server's output goes to ``<workdir>/server.log``. Use it as a context manager or
call :meth:`TrackingServer.stop`, which ends the server's whole process group.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ports import free_port

HOST = "127.0.0.1"
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 20.0


@dataclass
class TrackingServer:
    """A running ``mlflow server`` subprocess.

    Attributes:
        uri: tracking URI, ``"http://127.0.0.1:PORT"``.
        process: the server process; it leads its own process group (uvicorn's workers too).
        log_path: file receiving the server's standard output and error.
        workdir: folder holding ``mlflow.db`` and ``artifacts/``.
    """

    uri: str
    process: subprocess.Popen
    log_path: Path
    workdir: Path

    def log_tail(self, lines: int = 40) -> str:
        """Return the last ``lines`` lines of the server log (empty when there is none)."""
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """Terminate the server's process group (SIGTERM, then SIGKILL after 20 s) and wait."""
        if self.process.poll() is not None:
            return
        _signal_group(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            _signal_group(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=STOP_TIMEOUT_S)
        # Workers of the group may outlive the leader by a moment; make sure none is left.
        _signal_group(self.process.pid, signal.SIGKILL)

    def __enter__(self) -> TrackingServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_tracking_server(workdir: Path, timeout_s: float = START_TIMEOUT_S) -> TrackingServer:
    """Start an MLflow tracking server storing everything under ``workdir``; wait until healthy.

    Raises:
        RuntimeError: when the server exits or ``GET /health`` does not answer within
            ``timeout_s`` seconds; the message holds the tail of the server log.
    """
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = workdir / "server.log"
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--host", HOST,
        "--port", str(port),
        "--backend-store-uri", f"sqlite:///{workdir / 'mlflow.db'}",
        "--artifacts-destination", str(workdir / "artifacts"),
        "--serve-artifacts",
        "--workers", "1",
    ]
    # The server's background job runner (GenAI evaluation, trace roll-ups) is not needed
    # here; off, the server starts and stops faster and leaves no huey store in /dev/shm.
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
    server = TrackingServer(f"http://{HOST}:{port}", process, log_path, workdir)
    try:
        _wait_healthy(server, timeout_s)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_healthy(server: TrackingServer, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"mlflow server exited with status {server.process.returncode} before "
                f"answering {server.uri}/health; log tail:\n{server.log_tail()}"
            )
        try:
            with urllib.request.urlopen(f"{server.uri}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    raise RuntimeError(
        f"mlflow server at {server.uri} did not answer /health within {timeout_s:.0f} s; "
        f"log tail:\n{server.log_tail()}"
    )


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
