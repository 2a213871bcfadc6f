"""The benchmark harness: every stage of the "Fast as the hardware allows" issue on one size.

    .venv/bin/python -m benchmarks.run --size S|M|L
        [--stages floor,reference,packed,pandas,spark_udf,scorer,scorer_compiled,model_job]
        [--out benchmarks/results] [--model hgb|ridge] [--batch-rows 10000]
        [--pandas-max-rows 5000000] [--repeat 3] [--reference-repeat N] [--no-warm-up]
        [--keep-outputs] [--profile]
    .venv/bin/python -m benchmarks.run --compare S M L

(``python benchmarks/run.py ...`` works too.) Sizes: T 50k rows / 500 units (smoke runs),
S 1M / 1k, M 5M / 10k, L 20M / 100k; the data and model are generated once, in a child
process, under ``benchmarks/work/<size>/`` (see :mod:`benchmarks.datasets`). The stages (see
:mod:`benchmarks.stages`) run one after the other in one local[2] SparkSession: the pricing
stages, then the model stages (each group after an untimed warm-up), then pandas; each group
runs ``--repeat`` rounds (default 3) with the order reversed every other round, and each stage
reports its fastest round, with its peak memory sampled (see :mod:`benchmarks.memory`). Prints tables with the
issue's targets (see :mod:`benchmarks.targets`) and writes ``<out>/harness_<size>.json`` and
``.png``. A reference left out of ``--stages`` is estimated, never silently skipped. With
``--profile`` it also prints and saves each stage's Spark jobs and their task metrics, read
from Spark's event log (see :mod:`benchmarks.spark_profile`). Not part of the test suite;
timings are never asserted in tests.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import datasets, estimate, machine, report, spark_profile, stages  # noqa: E402
from benchmarks.harness import make_session  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_BATCH_ROWS = 10_000
PRICING_MEASURED_AS = ("the whole data-pricing job: batch_scoring.jobs.pipeline.run on "
                       "conf/jobs/data_pricing.yaml (read, quarantine, pricing, write Parquet, counts)")


def parse_args(argv=None) -> argparse.Namespace:
    """Parse ``--size`` (one run) or ``--compare`` (scaling across saved runs) and the options."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--size", choices=sorted(datasets.SIZES), help="T (smoke), S, M, L, or P (5M rows over 100k units: the pricing target)")
    mode.add_argument("--compare", nargs="+", metavar="SIZE",
                      help="sizes (or harness JSON files) to compare, e.g. S M L")
    parser.add_argument("--stages", default=",".join(stages.ORDER),
                        help=f"comma-separated, from {','.join(stages.ORDER)} (default: all); "
                             "a model stage brings model_floor")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="results folder")
    parser.add_argument("--cores", type=int, default=2, help="local[cores]")
    parser.add_argument("--batch-rows", type=int, default=DEFAULT_BATCH_ROWS,
                        help="rows per Arrow batch (maxRecordsPerBatch) and per predict call")
    parser.add_argument("--model", choices=("hgb", "ridge"), default="hgb",
                        help="hgb: predict-bound gradient boosting; ridge: nearly free predict")
    parser.add_argument("--pandas-max-rows", type=int, default=5_000_000,
                        help="skip the pandas stage above this many rows (all rows sit in memory)")
    parser.add_argument("--no-warm-up", action="store_true", help="time a cold JVM and cold workers")
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds per group, the stages' order reversed every other round; "
                             "each stage reports its best round (default 3)")
    parser.add_argument("--reference-repeat", type=int, default=None,
                        help="rounds of the applyInPandas reference, at most --repeat (default: "
                             "--repeat); at P one round takes about 13 minutes on 2 cores")
    parser.add_argument("--keep-outputs", action="store_true",
                        help="keep the stages' outputs under benchmarks/work/<size>/out")
    parser.add_argument("--profile", action="store_true",
                        help="write Spark's event log; report each stage's Spark jobs and task metrics")
    args = parser.parse_args(argv)
    if args.size:
        try:
            args.stage_names = stages.parse_stages(args.stages)
        except ValueError as error:
            parser.error(str(error))
    return args


def result_name(args) -> str:
    """``harness_<size>``, with ``_b<rows>``, ``_<model>``, ``_c<cores>`` for non-default options."""
    name = f"harness_{args.size}"
    if args.batch_rows != DEFAULT_BATCH_ROWS:
        name += f"_b{args.batch_rows}"
    if args.model != "hgb":
        name += f"_{args.model}"
    if args.cores != 2:
        name += f"_c{args.cores}"
    return name


def prepare(args) -> stages.Context:
    """Generate (or reuse) the data the chosen stages need; a Context without a session yet."""
    size = datasets.SIZES[args.size]
    ctx = stages.Context(spark=None, size=size, cores=args.cores, batch_rows=args.batch_rows,
                         scratch=datasets.size_folder(size) / "out", pandas_max_rows=args.pandas_max_rows,
                         model_kind=args.model)
    pricing, model = set(args.stage_names) & set(stages.PRICING), set(args.stage_names) & set(stages.MODEL)
    datasets.generate_in_subprocess(size, bool(pricing), args.model if model else None)
    if pricing:
        ctx.pricing_source = datasets.pricing_source(size)
        ctx.pricing_rows = datasets.count_rows(ctx.pricing_source)
    if model:
        ctx.model_source, ctx.model_path = datasets.model_data(size, args.model)
        ctx.model_rows = datasets.count_rows(ctx.model_source)
    return ctx


def run_group(ctx: stages.Context, names: list[str], measured: dict, args) -> None:
    """Run the chosen stages of one group ``args.repeat`` times into ``measured``: in order in
    rounds 1, 3, ..., reversed in rounds 2, 4, ..., so no stage always runs first or after
    the same neighbour; each stage keeps its fastest round (:func:`best_round`). The reference
    runs only in the first ``--reference-repeat`` rounds. Before the first reference run,
    print how long it is expected to take."""
    reference_rounds = args.reference_repeat if args.reference_repeat is not None else args.repeat
    for round_number in range(max(1, args.repeat)):
        order = names if round_number % 2 == 0 else names[::-1]
        for name in order:
            if name == "reference" and round_number >= max(1, reference_rounds):
                continue
            if name == "reference" and round_number == 0:
                floor = measured.get("floor", {}).get("seconds")
                guess = estimate.reference_seconds(args.out, ctx.size.units, floor)
                if guess:
                    print(f"  reference    expected to take about {guess['seconds']:,.0f} s or more "
                          f"({guess['per_unit_ms']} ms per unit on top of the floor)", flush=True)
            measured[name] = best_round(measured.get(name), stages.run_stage(ctx, stages.STAGES[name]))


def best_round(best: dict | None, latest: dict) -> dict:
    """The faster of two rounds of one stage, with every round's seconds in ``round_seconds``.

    A round that failed or was skipped wins (it is what must be reported).
    """
    rounds = [*(best or {}).get("round_seconds", []), latest.get("seconds")]
    if best is None or "seconds" not in best or "seconds" not in latest:
        chosen = latest if best is None or "seconds" in best else best
    else:
        chosen = latest if latest["seconds"] < best["seconds"] else best
    return {**chosen, "round_seconds": [r for r in rounds if r is not None]}


def reference_not_run(ctx: stages.Context, measured: dict, args) -> dict:
    """The reference's entry when it was left out: an estimate, or why there is none."""
    entry = {"group": "pricing", "what": stages.STAGES["reference"].what, "rows": ctx.pricing_rows,
             "cores": ctx.cores}
    guess = estimate.reference_seconds(args.out, ctx.size.units, measured.get("packed", {}).get("seconds"))
    if guess:
        entry.update(guess)
        print(f"  reference    not run (--stages): estimated ~{guess['seconds']:,.0f} s, "
              f"{guess['per_unit_ms']} ms per unit from {guess['basis']}", flush=True)
    else:
        entry["skipped"] = "not run (--stages); no estimate: needs the packed stage and an earlier " \
                           "result with both engines in the results folder"
        print(f"  reference    {entry['skipped']}", flush=True)
    return entry


def run_size(args) -> int:
    """One size: prepare data, run the stages, check predictions, print, save JSON and PNG."""
    from benchmarks.chart import write_png
    from benchmarks.model_scoring_vs_spark_udf import MODELS

    ctx = prepare(args)
    load_start = machine.load_average()
    event_logs = ctx.scratch.parent / "event-logs"
    extra = spark_profile.event_log_conf(event_logs) if args.profile else None
    ctx.spark = make_session(args.cores, f"benchmark-harness-{args.size}", args.batch_rows, extra)
    app_id = ctx.spark.sparkContext.applicationId
    described = machine.describe(ctx.spark)
    pricing = [n for n in args.stage_names if n in stages.PRICING and n != "pandas"]
    model = [n for n in args.stage_names if n in stages.MODEL]
    print(f"size {args.size}: {ctx.pricing_rows:,} pricing rows, {ctx.size.units:,} units, "
          f"{ctx.model_rows:,} model rows; local[{args.cores}]; stages {', '.join(args.stage_names)}",
          flush=True)
    measured, warm_up, checks = {}, {}, {}
    try:
        if pricing:
            if not args.no_warm_up:
                warm_up["pricing"] = round(stages.warm_up_pricing(ctx), 1)
            run_group(ctx, pricing, measured, args)
            stages.remove_outputs(ctx, pricing)
            if "reference" not in pricing:
                measured["reference"] = reference_not_run(ctx, measured, args)
        if model:
            if not args.no_warm_up:
                jvm_warm = bool(pricing) and not args.no_warm_up
                warm_up["model"] = round(stages.warm_up_model(ctx, jvm_warm), 1)
            run_group(ctx, model, measured, args)
            checks = stages.check_predictions(ctx, measured)
        if "pandas" in args.stage_names:  # last: what it leaves in this process is no other stage's
            run_group(ctx, ["pandas"], measured, args)
    finally:
        ctx.spark.stop()
        if not args.keep_outputs:
            shutil.rmtree(ctx.scratch, ignore_errors=True)
    ordered = {name: measured[name] for name in stages.ORDER if name in measured}
    result = report.build(
        ctx.size, ordered,
        rows={"pricing": ctx.pricing_rows, "model": ctx.model_rows}, cores=args.cores,
        batch_rows=args.batch_rows, model=MODELS[args.model] if model else None,
        pricing_measured_as=PRICING_MEASURED_AS if "packed" in pricing else None,
        stages_requested=args.stage_names, machine=described,
        load_average={"start": load_start, "end": machine.load_average()},
        measured=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        warm_up_seconds=warm_up, checks=checks,
    )
    report.print_report(result)
    if args.profile:
        result["profile"] = spark_profile.read_profile(event_logs, app_id)
        spark_profile.print_profile(result["profile"])
    name = result_name(args)
    report.write_json(result, args.out / f"{name}.json")
    write_png(result, args.out / f"{name}.png")
    print(f"written {args.out / name}.json and .png")
    failed = [n for n, s in ordered.items() if "error" in s]
    mismatched = [n for n, c in checks.items() if not c["ok"]]
    if failed or mismatched:
        print(f"error: failed stages {failed}, prediction mismatches {mismatched}", file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    """``--size``: run one size; ``--compare``: print (and save) scaling across saved sizes."""
    args = parse_args(argv)
    if args.compare:
        from benchmarks.compare import compare

        try:
            view = compare(args.compare, args.out)
        except (FileNotFoundError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        path = args.out / f"harness_compare_{'_'.join(view['sizes'])}.json"
        report.write_json(view, path)
        print(f"written {path}")
        return 0
    return run_size(args)


if __name__ == "__main__":
    sys.exit(main())
