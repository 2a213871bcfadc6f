"""The ``batch-score`` command line.

    batch-score run --job conf/jobs/data_pricing.yaml --profile conf/local.yaml [--run-date D]
    batch-score sample-data --kind bundle_sales --out data/sample/bundle_sales [--rows N]
    batch-score submit-args --job conf/jobs/data_pricing.yaml --profile conf/local.yaml --properties-file F
    batch-score entry-point
    batch-score fetch-jars
    batch-score predict --model URI (--record JSON | --input FILE --output FILE)
    batch-score show OUTPUT [--run-date D] [--limit N] [--profile P]
    batch-score report OUTPUT [--run-date D] [--run-id ID] [--profile P]
    batch-score sample-model --data data/sample/bundle_sales --out data/sample/models/bundle_demand
    batch-score package [--out dist] [--python python3.11]
    batch-score submit --job J.yaml --profile conf/emr.yaml [--run-date D] [--run-id R] [--no-wait]
    batch-score schedule --job J.yaml --profile conf/emr-serverless.yaml
    batch-score unschedule --job J.yaml --profile conf/emr-serverless.yaml

Every command takes ``--help`` (with an example); ``batch-score --version`` prints the version.
Errors go to standard error, with the exit codes of the README's table.

``submit-args`` writes the job's Spark settings to the properties file F (mode 0600; the caller
removes it after the run) and prints the spark-submit flags, one per line, that point at it;
``entry-point`` the path of the spark-submit entry script; ``spark-submit.sh`` uses both.
``fetch-jars`` resolves the runtime line's Delta and hadoop-aws jars and the PostgreSQL JDBC
driver into Ivy's cache once (``spark-submit.sh setup`` runs it).
``package``, ``submit``, ``schedule`` and ``unschedule`` run a job on EMR and EMR Serverless
(:mod:`batch_scoring.jobs.deploy.submit`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from batch_scoring.jobs import predict, run_job, sample_data, sample_model
from batch_scoring.jobs.config import load_job, load_profile
from batch_scoring.jobs.errors import JobError
from batch_scoring.jobs.redaction import redact_text
from batch_scoring.jobs.session import submit_arguments
from batch_scoring.udfs.contract import did_you_mean

DEPLOY_COMMANDS = ("submit", "schedule", "unschedule")
COMMANDS = (
    "run", "sample-data", "submit-args", "entry-point", "fetch-jars", "predict", "show", "report", "sample-model",
    "package", *DEPLOY_COMMANDS,
)


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch ``batch-score <command> ...``; return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--version"]:
        from batch_scoring.jobs.manifest import package_version

        print(f"batch-score {package_version()}")
        return 0
    if argv[:1] in (["-h"], ["--help"]):
        print(__doc__.strip())
        return 0
    if not argv or argv[0] not in COMMANDS:
        print(__doc__.strip(), file=sys.stderr)
        if argv:
            print(f"\nerror: unknown command {argv[0]!r}{did_you_mean(argv[0], COMMANDS)}", file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    if command == "run":
        return run_job.main(rest)
    if command == "sample-data":
        return sample_data.main(rest)
    if command == "predict":
        return predict.main(rest)
    if command == "show":
        from batch_scoring.jobs import show  # starts Spark: only for this command

        return show.main(rest)
    if command == "report":
        from batch_scoring.jobs import report_cli  # starts Spark: only for this command

        return report_cli.main(rest)
    if command == "sample-model":
        return sample_model.main(rest)
    if command == "package":
        from batch_scoring.jobs.deploy import packaging

        return packaging.main(rest)
    if command in DEPLOY_COMMANDS:
        from batch_scoring.jobs.deploy import submit  # boto3 and packaging only when deploying

        return getattr(submit, f"{command}_main")(rest)
    if command == "entry-point":
        print(run_job.__file__)
        return 0
    if command == "fetch-jars":
        return _fetch_jars(rest)
    return _print_submit_args(rest)


def _fetch_jars(argv: Sequence[str]) -> int:
    argparse.ArgumentParser(
        prog="batch-score fetch-jars",
        description="Resolve the installed runtime line's Delta and hadoop-aws jars and the "
                    "PostgreSQL JDBC driver into Ivy's cache (~/.ivy2) and print their Maven "
                    "coordinates.",
        epilog="example: batch-score fetch-jars   # once, before working offline",
    ).parse_args(argv)
    from batch_scoring.jobs.session import fetch_jars

    print("\n".join(fetch_jars()))
    return 0


def _print_submit_args(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="batch-score submit-args",
        epilog="example: batch-score submit-args --job conf/jobs/data_pricing.yaml --profile "
               "conf/local.yaml --properties-file /tmp/run.properties")
    parser.add_argument("--job", required=True)
    parser.add_argument("--profile", required=True)
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--properties-file", required=True,
                        help="where to write the Spark settings (created with mode 0600)")
    args, _ = parser.parse_known_args(argv)
    try:
        args_out = submit_arguments(load_profile(args.profile), load_job(args.job, args.set),
                                    args.properties_file)
    except JobError as error:
        print(f"error: {redact_text(str(error))}", file=sys.stderr)
        return error.exit_code
    print("\n".join(args_out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
