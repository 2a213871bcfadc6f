"""``batch-score predict``: score one record or a local file with pandas alone, no Spark.

    batch-score predict --model models:/churn@champion --record '{"tenure": 12, "plan": "s"}'
    batch-score predict --job conf/jobs/model_scoring.yaml --input rows.parquet --output scored.parquet

Uses the same resolution, signature check, row rules and :func:`score_frame` as the Spark job,
so a record scored here gets exactly the prediction the job gives it. With ``--model`` the
typed URI is the allow-list; with ``--job`` the job's ``model`` section (and its
``allowed_uris``) is used. Exit codes as the job: 2 configuration (bad JSON, model not found),
3 input (missing columns, a record the model cannot score), 4 a broken model (it raised on
a whole batch and on each probe row alone). A ``predict`` call that raises is
bisected as in the Spark job: rows that raise alone are rejected (``model_raised``, with the
error), the others scored.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from batch_scoring.jobs.config import ModelConfig, load_job
from batch_scoring.jobs.errors import ConfigError, InputError, JobError, RejectBudgetExceeded
from batch_scoring.jobs.model_environment import check_model_environment
from batch_scoring.jobs.model_job import resolve, scoring_spec
from batch_scoring.jobs.model_resolution import ModelResolutionError
from batch_scoring.jobs.preflight import check_frame
from batch_scoring.jobs.redaction import redact_text
from batch_scoring.udfs.models.model_scoring import (
    MODEL_RAISED,
    ModelBrokenError,
    ModelInputError,
    ModelStamp,
    ScoringSpec,
    score_frame,
    score_frame_isolating,
)
from batch_scoring.udfs.models.pandas_quarantine import split_rejects_pandas
from batch_scoring.udfs.models.preprocessing import PreprocessingError


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse the predict command line (see ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="batch-score predict", description=__doc__.splitlines()[0],
        epilog="examples: batch-score predict --model models:/demand@champion --record "
               "'{\"price\": 9.5, \"volume\": 120}'; batch-score predict --job conf/jobs/model_scoring.yaml "
               "--input rows.parquet --output scores.parquet")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", help="model URI (local path, runs:/, models:/, s3://)")
    which.add_argument("--job", help="job YAML whose 'model' section to use")
    parser.add_argument("--tracking-uri", help="MLflow tracking server (default $MLFLOW_TRACKING_URI)")
    parser.add_argument("--input-columns", help="comma-separated inputs, for a model without signature")
    parser.add_argument("--output-schema", help="DDL of the prediction columns")
    parser.add_argument("--passthrough", default="", help="comma-separated columns to copy to the output")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--record", help="one record as a JSON object (or a JSON list of objects)")
    what.add_argument("--input", help="a .parquet, .csv or .json file of records")
    parser.add_argument("--output", help="with --input: where to write the scored rows (.parquet)")
    parser.add_argument("--overwrite", action="store_true",
                        help="with --output: replace an existing output file (default: refuse)")
    parser.add_argument(
        "--allow-version-mismatch", action="store_true",
        help="score although the model's library (e.g. scikit-learn) is at another major.minor "
        "version than it was saved with (a warning instead of exit 2)",
    )
    return parser.parse_args(argv)


FLAGS = {
    "model.output_schema": "--output-schema",
    "model.input_columns": "--input-columns",
    "model.passthrough": "--passthrough",
    "model.allowed_uris": "--model",
    "model.allow_version_mismatch: true": "--allow-version-mismatch",
}
"""Job fields and the ``predict`` flags that stand for them, for messages under ``--model``."""


def in_flags(message: str) -> str:
    """``message`` with job fields (``model.output_schema``) replaced by predict's flags."""
    for field, flag in FLAGS.items():
        message = message.replace(field, flag)
    return message


def model_config(args: argparse.Namespace) -> ModelConfig:
    """The model settings: the job's ``model`` section, or the command-line flags."""
    if args.job:
        job = load_job(args.job)
        if job.model is None:
            raise ConfigError(f"{args.job} has no 'model' section")
        return job.model
    return ModelConfig(
        uri=args.model,
        allowed_uris=[args.model],
        tracking_uri=args.tracking_uri,
        input_columns=_split(args.input_columns) or None,
        output_schema=args.output_schema,
        passthrough=_split(args.passthrough),
    )


def read_records(args: argparse.Namespace) -> pd.DataFrame:
    """The rows to score from ``--record`` or ``--input``.

    Raises:
        ConfigError: when ``--record`` is not a JSON object or list of objects, ``--input``
            has an unknown extension, ``--output`` is missing, or it (or its rejects file)
            exists and ``--overwrite`` is not given.
        InputError: when ``--input`` does not exist.
    """
    if args.record is not None:
        try:
            record = json.loads(args.record)
        except json.JSONDecodeError as error:
            raise ConfigError(f"--record is not valid JSON: {error}") from None
        records = record if isinstance(record, list) else [record]
        if not records or not all(isinstance(r, dict) for r in records):
            raise ConfigError("--record must be a JSON object like {\"x\": 1.5} or a list of them")
        return pd.DataFrame(records)
    if not args.output:
        raise ConfigError("--input needs --output (a .parquet file for the scored rows)")
    if not args.overwrite:
        existing = [p for p in (args.output, f"{args.output}.rejects.parquet") if Path(p).exists()]
        if existing:
            raise ConfigError(
                f"--output {args.output}: {', '.join(existing)} already exist(s); give another "
                "--output or add --overwrite to replace"
            )
    path = Path(args.input)
    if not path.exists():
        raise InputError(f"--input {path} does not exist")
    readers = {".parquet": pd.read_parquet, ".csv": pd.read_csv, ".json": pd.read_json}
    if path.suffix not in readers:
        raise ConfigError(f"--input {path}: use a .parquet, .csv or .json file")
    return readers[path.suffix](path)


def score_local(model, pdf: pd.DataFrame, spec: ScoringSpec, stamp: ModelStamp, batch_size: int):
    """Score ``pdf`` with pandas: rows breaking the input rules, or on which ``predict``
    raises alone, go to the second frame.

    Returns:
        ``(scored, rejects)``: scored rows as :func:`score_frame` returns them (passthrough,
        predictions, model stamps), and the rejected rows (``pdf``'s columns and index) with
        ``reject_reason`` (a rule's reason or ``model_raised``), ``reject_column`` and
        ``reject_rule`` (for ``model_raised``: the error); together every row of ``pdf`` once.

    Raises:
        InputError: when a required input or passthrough column is missing.
    """
    needed = [*(i.name for i in spec.source_inputs), *spec.consumed_columns, *spec.passthrough]
    missing = [c for c in dict.fromkeys(needed) if c not in pdf.columns]
    if missing:
        raise InputError(f"the records lack column(s) {missing}; the model reads {needed}")
    valid, rejects = split_rejects_pandas(pdf, spec.row_rules(), [])
    parts = [
        score_frame_isolating(model, valid.iloc[start:start + batch_size], spec, stamp)
        for start in range(0, len(valid), batch_size)
    ]
    if not parts:
        return score_frame(model, valid, spec, stamp), rejects
    scored = pd.concat([part[0] for part in parts], ignore_index=True)
    raised = [part[1] for part in parts if len(part[1])]
    return scored, pd.concat([rejects, *raised]) if raised else rejects


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``batch-score predict``; return the exit code."""
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    download = tempfile.mkdtemp(prefix="batch-scoring-predict-")
    try:
        config = model_config(args)
        records = read_records(args)
        if config.uri is None:
            raise ConfigError("predict scores one model: use a job whose model has 'uri', not 'route'")
        try:
            resolved = resolve(config, config.uri, download)
        except ModelResolutionError as error:
            raise ConfigError(str(error)) from None
        check_model_environment(
            resolved.local_path, resolved.uri,
            allow_version_mismatch=args.allow_version_mismatch or config.allow_version_mismatch,
        )
        spec = scoring_spec(config, resolved, list(records.columns))
        check_frame(records, spec, "the record(s)" if args.record is not None else f"--input {args.input}",
                    resolved.uri)
        import mlflow.pyfunc

        model = mlflow.pyfunc.load_model(resolved.local_path)
        stamp = ModelStamp(resolved.uri, resolved.version, resolved.run_id)
        scored, rejects = score_local(model, records, spec, stamp, config.batch_size)
        return _report(args, scored, rejects, resolved.sha256)
    except JobError as error:
        print(f"error: {redact_text(in_flags(str(error)) if args.model else str(error))}", file=sys.stderr)
        return error.exit_code
    except (ModelInputError, PreprocessingError) as error:
        print(f"error: {redact_text(str(error))}", file=sys.stderr)
        return InputError.exit_code
    except ModelBrokenError as error:
        print(f"error: {error}; nothing was written. Check the model's libraries and their "
              "versions against its requirements.txt", file=sys.stderr)
        return RejectBudgetExceeded.exit_code
    finally:
        shutil.rmtree(download, ignore_errors=True)


def _report(args, scored: pd.DataFrame, rejects: pd.DataFrame, sha256: str) -> int:
    if args.record is not None:
        for _, row in rejects.iterrows():
            print(f"error: record not scored: {_reject_text(row)}", file=sys.stderr)
        print(scored.assign(scored_at=scored["scored_at"].astype(str)).to_json(orient="records", lines=True, double_precision=15).strip())
        return InputError.exit_code if len(rejects) else 0
    scored.to_parquet(args.output, coerce_timestamps="us", allow_truncated_timestamps=True)
    rejects_file = Path(f"{args.output}.rejects.parquet")
    if len(rejects):
        rejects.to_parquet(rejects_file)
    elif rejects_file.exists():  # an earlier run's rejects (replaced with --overwrite)
        rejects_file.unlink()
    print(f"scored {len(scored):,} rows, rejected {len(rejects):,} -> {args.output} "
          f"(model sha256 {sha256[:12]})")
    return 0


def _reject_text(row: pd.Series) -> str:
    if row["reject_reason"] == MODEL_RAISED:
        return f"the model raised {row['reject_rule']}"
    return f"{row['reject_reason']} in {row['reject_column']!r} (must be {row['reject_rule']})"


def _split(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


if __name__ == "__main__":
    sys.exit(main())
