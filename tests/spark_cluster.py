"""A real Spark standalone cluster on 127.0.0.1 (one master, N workers), for integration tests.

``start_cluster(workdir)`` starts the master and the workers with pip's pyspark alone
(``$SPARK_HOME/bin/spark-class org.apache.spark.deploy.master.Master ...`` and
``... deploy.worker.Worker spark://127.0.0.1:P ...``, SPARK_HOME = the installed pyspark
folder), each on free ports of 127.0.0.1, and returns once the master's web UI reports every
worker alive. Process output goes to ``<workdir>/logs/<name>.log``; executors run in
``<workdir>/work/<app-id>/<executor-id>/`` (SPARK_WORKER_DIR), where their stdout and stderr
stay after the application ends. :meth:`SparkCluster.stop` ends every process by its pid;
:meth:`SparkCluster.kill_worker` SIGKILLs one worker with its executors and their Python
processes, as a lost machine would (fault-injection tests).

    with start_cluster(tmp_path) as cluster:
        subprocess.run(["./spark-submit.sh", "cluster", job, "--master", cluster.master_url])
        assert cluster.completed_apps()
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from ports import free_port

HOST = "127.0.0.1"
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 20.0


def spark_home() -> Path:
    """The installed pyspark folder, which holds ``bin/spark-class`` and ``jars/``."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


@dataclass
class SparkCluster:
    """A running standalone cluster.

    Attributes:
        master_url: ``spark://127.0.0.1:PORT``, the URL to give ``--master``.
        web_ui_url: ``http://127.0.0.1:PORT``, the master's web UI (``/json/`` is its state).
        processes: name (``master``, ``worker-1``, ...) -> process; each leads its own
            process group.
        workdir: folder holding ``logs/`` and ``work/``.
    """

    master_url: str
    web_ui_url: str
    workdir: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def log_dir(self) -> Path:
        """Folder of the daemons' logs (``<name>.log``), also their SPARK_LOG_DIR."""
        return self.workdir / "logs"

    @property
    def worker_dir(self) -> Path:
        """The workers' SPARK_WORKER_DIR: ``<app-id>/<executor-id>/{stdout,stderr}`` inside."""
        return self.workdir / "work"

    def state(self, timeout_s: float = 5.0) -> dict:
        """The master's state as its web UI serves it at ``/json/`` (workers, apps, ...)."""
        with urllib.request.urlopen(f"{self.web_ui_url}/json/", timeout=timeout_s) as response:
            return json.load(response)

    def completed_apps(self) -> list[dict]:
        """Applications that ran on this cluster and ended (``id``, ``name``, ``state``, ...)."""
        return self.state()["completedapps"]

    def log_tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines of every daemon's log, each under a ``== name ==`` header."""
        parts = []
        for name in self.processes:
            path = self.log_dir / f"{name}.log"
            text = path.read_text(errors="replace") if path.exists() else ""
            parts.append(f"== {name} ({path}) ==\n" + "\n".join(text.splitlines()[-lines:]))
        return "\n".join(parts)

    def process_tree(self, name: str) -> dict[int, str]:
        """The daemon ``name`` and every process below it, pid -> command line (Linux /proc).

        For a worker: its JVM, the executor JVMs it launched, their PySpark daemons and the
        Python workers those forked. Empty when the daemon has ended.
        """
        root = self.processes[name].pid
        children: dict[int, list[int]] = {}
        for pid, ppid, _ in _proc_table():
            children.setdefault(ppid, []).append(pid)
        tree, todo = [], [root] if _proc_stat(root) else []
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo.extend(children.get(pid, []))
        return {pid: _cmdline(pid) for pid in tree}

    def kill_worker(self, name: str) -> dict[int, str]:
        """SIGKILL worker ``name`` with everything below it, as a lost machine would; return
        the processes killed (pid -> command line).

        The PySpark daemon moves itself into its own process group (``os.setpgid(0, 0)`` in
        ``pyspark/daemon.py``), so killing the worker's group alone would leave Python workers
        running: every process of :meth:`process_tree` is signalled by pid, then each process
        group among them (a child forked meanwhile shares its parent's group). Waits for the
        worker's own process to end; :meth:`stop` still works afterwards (it skips the dead).
        """
        tree = self.process_tree(name)
        groups = {_proc_stat(pid)[1] for pid in tree if _proc_stat(pid)} - {os.getpgrp()}
        for pid in tree:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for group in groups:
            try:
                os.killpg(group, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.processes[name].wait(timeout=STOP_TIMEOUT_S)
        return tree

    def stop(self) -> None:
        """Stop the workers, then the master: SIGTERM, SIGKILL after 20 s, by pid; then wait.

        A worker's executors are its children in its process group and are ended with it.
        """
        for name in reversed(list(self.processes)):
            _stop(self.processes[name])

    def __enter__(self) -> SparkCluster:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def start_cluster(
    workdir: str | os.PathLike,
    workers: int = 2,
    cores: int = 1,
    memory: str = "2g",
    timeout_s: float = START_TIMEOUT_S,
) -> SparkCluster:
    """Start a master and ``workers`` workers on 127.0.0.1; return when all are registered.

    Args:
        workdir: folder for logs and the workers' work directories (created).
        workers: number of workers.
        cores: cores each worker offers (``-c``).
        memory: memory each worker offers to executors (``-m``), e.g. ``2g``.
        timeout_s: how long to wait for the master's web UI to list every worker alive.

    Raises:
        RuntimeError: when a daemon exits or the workers do not register within
            ``timeout_s``; the message holds the tail of every daemon's log. Every process
            already started is stopped first.
    """
    workdir = Path(workdir).resolve()
    home = spark_home()
    master_port, web_port = free_port(), free_port()
    cluster = SparkCluster(f"spark://{HOST}:{master_port}", f"http://{HOST}:{web_port}", workdir)
    cluster.log_dir.mkdir(parents=True, exist_ok=True)
    cluster.worker_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "SPARK_HOME": str(home),
        "SPARK_LOCAL_IP": HOST,
        "SPARK_LOG_DIR": str(cluster.log_dir),
        "SPARK_WORKER_DIR": str(cluster.worker_dir),
    }
    spark_class = str(home / "bin" / "spark-class")
    try:
        cluster.processes["master"] = _launch(
            [spark_class, "org.apache.spark.deploy.master.Master", "--host", HOST,
             "--port", str(master_port), "--webui-port", str(web_port)],
            env, cluster.log_dir / "master.log",
        )
        for number in range(1, workers + 1):
            cluster.processes[f"worker-{number}"] = _launch(
                [spark_class, "org.apache.spark.deploy.worker.Worker", cluster.master_url,
                 "--host", HOST, "-c", str(cores), "-m", memory,
                 "--webui-port", str(free_port()), "--work-dir", str(cluster.worker_dir)],
                env, cluster.log_dir / f"worker-{number}.log",
            )
        _wait_for_workers(cluster, workers, timeout_s)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _launch(command: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    with open(log_path, "wb") as log:
        # spark-class execs the JVM, so the pid is the daemon's; its own group holds its children.
        return subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def _wait_for_workers(cluster: SparkCluster, workers: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    alive = None
    while time.monotonic() < deadline:
        for name, process in cluster.processes.items():
            if process.poll() is not None:
                raise RuntimeError(
                    f"Spark {name} exited with status {process.returncode} before the cluster "
                    f"was up; log tails:\n{cluster.log_tail()}"
                )
        try:
            alive = cluster.state(timeout_s=2)["aliveworkers"]
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError, KeyError):
            alive = None
        if alive == workers:
            return
        time.sleep(0.5)
    raise RuntimeError(
        f"Spark master {cluster.master_url} did not list {workers} alive workers within "
        f"{timeout_s:.0f} s (last seen: {alive}); log tails:\n{cluster.log_tail()}"
    )


def _proc_stat(pid: int) -> tuple[int, int] | None:
    """``(ppid, pgid)`` of a live process from ``/proc/<pid>/stat``, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
    fields = text.rsplit(")", 1)[1].split()
    return int(fields[1]), int(fields[2])


def _proc_table() -> list[tuple[int, int, int]]:
    """Every live process as ``(pid, ppid, pgid)``."""
    table = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _proc_stat(int(entry.name))):
            table.append((int(entry.name), *stat))
    return table


def _cmdline(pid: int) -> str:
    """The command line of ``pid`` with spaces between arguments ('' when it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return ""


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_S)
    # Executors a worker launched live in its process group; none may outlive it.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
