"""Where a stage's time goes: its Spark jobs and their stages, read back from Spark's event log.

With ``python -m benchmarks.run --profile`` the session writes an uncompressed event log
(``spark.eventLog.*``, Spark's own record of every job and stage, see
https://spark.apache.org/docs/latest/monitoring.html) and each benchmark stage tags the jobs it
starts with the local property ``benchmark.stage``. After the run, :func:`read_profile` parses
the log into, per benchmark stage, one entry per Spark job: the call site that started it
(``count at .../commit.py:201``), wall seconds from submission to completion, and per Spark
stage the task count, summed executor run and CPU time, GC time, bytes read, shuffled and
written. Executor run time includes the time the JVM waits for the Python workers, so a
pandas UDF's Python time shows up there and not as CPU time of the JVM.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

STAGE_PROPERTY = "benchmark.stage"
_METRICS = {
    "internal.metrics.executorRunTime": ("executor_run_s", 1e-3),
    "internal.metrics.executorCpuTime": ("executor_cpu_s", 1e-9),
    "internal.metrics.jvmGCTime": ("gc_s", 1e-3),
    "internal.metrics.input.bytesRead": ("input_mib", 1 / 2**20),
    "internal.metrics.shuffle.read.localBytesRead": ("shuffle_read_mib", 1 / 2**20),
    "internal.metrics.shuffle.write.bytesWritten": ("shuffle_write_mib", 1 / 2**20),
    "internal.metrics.output.bytesWritten": ("output_mib", 1 / 2**20),
    "internal.metrics.diskBytesSpilled": ("spilled_disk_mib", 1 / 2**20),
}


def event_log_conf(folder: Path) -> dict[str, str]:
    """Spark confs that write an uncompressed, unrolled event log into ``folder`` (created)."""
    folder.mkdir(parents=True, exist_ok=True)
    return {
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": folder.resolve().as_uri(),
        "spark.eventLog.compress": "false",
        "spark.eventLog.rolling.enabled": "false",
    }


def tag_stage(spark, name: str | None) -> None:
    """Tag the jobs this thread starts from now on with benchmark stage ``name`` (None: untag)."""
    spark.sparkContext.setLocalProperty(STAGE_PROPERTY, name)


def read_profile(folder: Path, app_id: str) -> dict[str, list[dict]]:
    """Parse the event log of application ``app_id`` in ``folder``.

    Returns:
        benchmark stage name -> its Spark jobs in submission order, each a dict with
        ``job`` (id), ``call_site``, ``seconds`` (wall, submission to completion) and
        ``stages``: a list of dicts with ``name``, ``tasks``, ``seconds`` and the summed task
        metrics ``executor_run_s``, ``executor_cpu_s``, ``gc_s``, ``input_mib``,
        ``shuffle_read_mib``, ``shuffle_write_mib``, ``output_mib``, ``spilled_disk_mib``.
        Untagged jobs (warm-up, checks) are left out; skipped stages (their shuffle output
        reused) are not listed.

    Raises:
        FileNotFoundError: when the application's event log is not in ``folder``.
    """
    path = folder / app_id
    if not path.exists():
        raise FileNotFoundError(
            f"no event log {path}: start the session with event_log_conf() (--profile)"
        )
    jobs: dict[int, dict] = {}
    stage_to_job: dict[int, int] = {}
    for line in path.read_text().splitlines():
        event = json.loads(line)
        kind = event.get("Event")
        if kind == "SparkListenerJobStart":
            _job_started(event, jobs, stage_to_job)
        elif kind == "SparkListenerJobEnd" and event["Job ID"] in jobs:
            job = jobs[event["Job ID"]]
            job["seconds"] = round((event["Completion Time"] - job.pop("_submitted")) / 1000, 2)
        elif kind == "SparkListenerStageCompleted":
            info = event["Stage Info"]
            if stage_to_job.get(info["Stage ID"]) in jobs:
                jobs[stage_to_job[info["Stage ID"]]]["stages"].append(_stage_entry(info))
    profile: dict[str, list[dict]] = defaultdict(list)
    for job in sorted(jobs.values(), key=lambda j: j["job"]):
        profile[job.pop("_tag")].append(job)
    return dict(profile)


def _job_started(event: dict, jobs: dict[int, dict], stage_to_job: dict[int, int]) -> None:
    properties = event.get("Properties") or {}
    tag = properties.get(STAGE_PROPERTY)
    if not tag:
        return
    job_id = event["Job ID"]
    stage_names = [info.get("Stage Name", "?") for info in event.get("Stage Infos", [])]
    call_site = properties.get("callSite.short") or (stage_names[-1] if stage_names else "?")
    jobs[job_id] = {"job": job_id, "call_site": _short(call_site),
                    "_tag": tag, "_submitted": event["Submission Time"], "seconds": None,
                    "stages": []}
    for stage_id in event["Stage IDs"]:
        stage_to_job[stage_id] = job_id


def _short(call_site: str) -> str:
    """``count at /abs/path/jobs/commit.py:201`` -> ``count at commit.py:201``."""
    action, _, where = call_site.partition(" at ")
    return f"{action} at {where.rsplit('/', 1)[-1]}" if where else call_site


def _stage_entry(info: dict) -> dict:
    entry = {"name": _short(info["Stage Name"]), "tasks": info["Number of Tasks"],
             "seconds": round((info["Completion Time"] - info["Submission Time"]) / 1000, 2)}
    values = {item.get("Name"): item.get("Value") for item in info.get("Accumulables", [])}
    for metric, (name, scale) in _METRICS.items():
        entry[name] = round(float(values.get(metric) or 0) * scale, 2)
    return entry


def print_profile(profile: dict[str, list[dict]]) -> None:
    """Print, per benchmark stage, its Spark jobs and their stages with the main metrics."""
    for tag, jobs in profile.items():
        total = sum(job["seconds"] or 0 for job in jobs)
        print(f"\nprofile of {tag}: {len(jobs)} Spark job(s), {total:.1f} s inside jobs")
        print(f"  {'job':>4} {'s':>6}  {'stage':<44} {'tasks':>5} {'run s':>7} {'cpu s':>7} "
              f"{'in MiB':>7} {'shufW':>7} {'out MiB':>7}")
        for job in jobs:
            print(f"  {job['job']:>4} {job['seconds'] or 0:>6.1f}  {job['call_site'][:44]}")
            for stage in job["stages"]:
                print(f"  {'':>4} {stage['seconds']:>6.1f}    {stage['name'][:42]:<42} "
                      f"{stage['tasks']:>5} {stage['executor_run_s']:>7.1f} "
                      f"{stage['executor_cpu_s']:>7.1f} {stage['input_mib']:>7.1f} "
                      f"{stage['shuffle_write_mib']:>7.1f} {stage['output_mib']:>7.1f}")
