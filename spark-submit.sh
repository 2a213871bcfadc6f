#!/usr/bin/env bash
# One entry for running batch-scoring jobs, on every target:
#
#   ./spark-submit.sh <target> <job.yaml> [--profile P] [--run-date YYYY-MM-DD] [--set field=value ...]
#
# Targets:
#   quickstart      Create .venv (Python 3.11) with the package and its test tools, generate the
#                   embedded sample data and sample demand model if missing, and run the
#                   data-pricing job locally.
#   setup           Only create the environment: .venv (default line, EMR 8.1 LTS: Spark 4.1.1,
#                   Delta 4.2.0), or with --line emr7 .venv-emr7 (EMR 7: Spark 3.5.8, Delta 3.3.2,
#                   installed with -c constraints/emr7.txt). Use an EMR 7 environment with
#                   BATCH_SCORE_PYTHON=.venv-emr7/bin/python for local runs and EMR 7 deploys.
#   local           spark-submit on this machine in local mode (profile conf/local.yaml).
#   cluster         spark-submit from this machine to a Spark master (profile conf/cluster.yaml):
#                   give --master spark://host:7077 or set SPARK_MASTER_URL. Executors run the
#                   Python in PYSPARK_PYTHON (default this checkout's .venv/bin/python).
#   emr             Build and upload the wheel, environment archive, entry script and config to
#                   the profile's aws.artifacts_uri, add a step to the EMR cluster emr.cluster_id
#                   and wait for it (profile conf/emr.yaml). --no-wait returns after submitting.
#   emr-serverless  The same, as a job run on the EMR Serverless application
#                   emr_serverless.application_id (profile conf/emr-serverless.yaml).
#                   --attempt N starts a new run for a run date already submitted. Once the
#                   run ended it prints its Spark UI link and cost, and records them (with
#                   the log folder) in the run's manifest and report. --run-id R names the
#                   attempt (emr and emr-serverless; printed; default <job>-<date>-<attempt>
#                   on EMR Serverless, a generated id on EMR).
#   schedule        Create or update the EventBridge Scheduler schedule that starts the job on
#                   EMR Serverless at the job's schedule.expression (profile conf/emr-serverless.yaml).
#   unschedule      Delete that schedule.
#   package         Only build the wheel and the environment archive into dist/.
#
# Every target prints where the logs and the outputs are and exits with the job's status:
# 0 success, 2 config error, 3 input error, 4 reject budget exceeded, 5 deploy or remote run
# failure, 1 other failure (see README, Exit codes).
#
# Environment: PYTHON (interpreter for the quickstart venv, default python3.11),
# BATCH_SCORE_PYTHON (interpreter with the package installed, default .venv/bin/python),
# BATCH_SCORE_PROFILE (profile YAML instead of the target's default; --profile wins),
# SPARK_MASTER_URL (cluster), AWS_REGION / AWS_ENDPOINT_URL / the boto3 credential chain (AWS).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }
die() { echo "spark-submit.sh: $*" >&2; exit 2; }

require_java17() {
  command -v java >/dev/null 2>&1 || die "Java 17 is required and 'java' is not on PATH. Install a JDK 17 (e.g. 'apt-get install openjdk-17-jdk-headless') or set JAVA_HOME and PATH."
  local version major
  version="$(java -version 2>&1 | awk -F'"' '/version/ {print $2; exit}')"
  major="${version%%.*}"
  [[ "$major" =~ ^[0-9]+$ && "$major" -ge 17 ]] || die "Java 17 or newer is required; 'java -version' reports '${version:-unknown}'."
}

package_python() {
  local py="${BATCH_SCORE_PYTHON:-$ROOT/.venv/bin/python}"
  [[ -x "$py" ]] || die "no Python environment at $py; run './spark-submit.sh quickstart' first (or set BATCH_SCORE_PYTHON)."
  echo "$py"
}

# setup_venv [emr8|emr7]: create or update the line's environment with the package and its
# test tools (emr8 -> .venv, emr7 -> .venv-emr7 with constraints/emr7.txt).
setup_venv() {
  local line="${1:-emr8}" base="${PYTHON:-python3.11}" venv constraints=()
  case "$line" in
    emr8) venv="$ROOT/.venv" ;;
    emr7) venv="$ROOT/.venv-emr7"; constraints=(-c "$ROOT/constraints/emr7.txt") ;;
    *) die "unknown runtime line '$line': use --line emr8 (EMR 8.1 LTS, the default) or --line emr7 (EMR 7)" ;;
  esac
  command -v "$base" >/dev/null 2>&1 || die "Python 3.11 is required: '$base' not found (set PYTHON=/path/to/python3.11)."
  "$base" -c 'import sys; sys.exit(sys.version_info[:2] < (3, 11))' || die "$base is older than Python 3.11."
  [[ -x "$venv/bin/python" ]] || "$base" -m venv "$venv"
  echo "Installing the package and its test tools into $venv (line $line) ..."
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet -e "$ROOT[dev]" "${constraints[@]}"
  # Resolve the line's Delta and hadoop-aws jars into Ivy's cache once, before any two Spark
  # starts (the tests run two at a time) resolve them together into an empty cache.
  require_java17
  echo "Resolving the Delta and hadoop-aws jars of line $line into Ivy's cache ..."
  "$venv/bin/batch-score" fetch-jars >/dev/null 2>"$venv/fetch-jars.log" \
    || { cat "$venv/fetch-jars.log" >&2; die "could not resolve the jars (is Maven Central reachable?)"; }
}

setup() {
  case "${1:-}" in
    "") setup_venv emr8 ;;
    --line) [[ $# -ge 2 ]] || die "--line needs emr8 or emr7"; setup_venv "$2" ;;
    --line=*) setup_venv "${1#--line=}" ;;
    *) die "setup takes only --line emr8|emr7, not '$1'" ;;
  esac
}

# Split "--profile P" and "--master URL" out of the arguments; the rest go to the job.
parse_target_args() {
  OPT_PROFILE="" OPT_MASTER="" JOB_ARGS=()
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --profile) [[ $# -ge 2 ]] || die "--profile needs a YAML file"; OPT_PROFILE="$2"; shift 2 ;;
      --profile=*) OPT_PROFILE="${1#--profile=}"; shift ;;
      --master) [[ $# -ge 2 ]] || die "--master needs a URL"; OPT_MASTER="$2"; shift 2 ;;
      --master=*) OPT_MASTER="${1#--master=}"; shift ;;
      *) JOB_ARGS+=("$1"); shift ;;
    esac
  done
}

profile_for() {
  local profile="${OPT_PROFILE:-${BATCH_SCORE_PROFILE:-$ROOT/conf/$1.yaml}}"
  [[ -f "$profile" ]] || die "profile $profile does not exist; give --profile conf/<name>.yaml"
  echo "$profile"
}

require_job() {
  [[ -n "${1:-}" && -f "$1" ]] || die "give a job YAML file, e.g. ./spark-submit.sh $2 conf/jobs/data_pricing.yaml (got '${1:-}')."
}

# local and cluster: spark-submit on this machine with flags rendered from the profile.
run_spark_submit() {
  local target="$1" job="${2:-}"; shift 2 || shift $#
  require_job "$job" "$target"
  parse_target_args "$@"
  require_java17
  local py profile entry
  py="$(package_python)"
  profile="$(profile_for "$target")"
  [[ -z "$OPT_MASTER" ]] || export SPARK_MASTER_URL="$OPT_MASTER"
  export PYSPARK_PYTHON="${PYSPARK_PYTHON:-$py}" PYSPARK_DRIVER_PYTHON="$py"
  # The Spark settings go to spark-submit in a properties file readable only by this user
  # (mktemp creates it with mode 0600), never as --conf key=value: every process's arguments
  # are visible to every user (ps). The file is removed when this script exits, however it ends.
  local -a flags
  PROPERTIES_FILE="$(mktemp "${TMPDIR:-/tmp}/batch-score-spark-XXXXXXXX.properties")"
  trap 'rm -f "$PROPERTIES_FILE"' EXIT
  trap 'rm -f "$PROPERTIES_FILE"; exit 130' INT
  trap 'rm -f "$PROPERTIES_FILE"; exit 143' TERM
  mapfile -t flags < <("$py" -m batch_scoring.jobs.cli submit-args --job "$job" --profile "$profile" \
    --properties-file "$PROPERTIES_FILE" "${JOB_ARGS[@]}")
  [[ ${#flags[@]} -gt 0 ]] || exit 2
  entry="$("$py" -m batch_scoring.jobs.cli entry-point)"
  echo "spark-submit.sh: $target run of $job on profile $profile; driver and Spark logs follow on this terminal." >&2
  local status=0
  "$(dirname "$py")/spark-submit" "${flags[@]}" "$entry" --job "$job" --profile "$profile" "${JOB_ARGS[@]}" || status=$?
  rm -f "$PROPERTIES_FILE"
  return "$status"
}

run_local() { run_spark_submit local "$@"; }

# emr, emr-serverless, schedule, unschedule: the Python deploy commands (boto3).
run_deploy() {
  local command="$1" target="$2" job="${3:-}"; shift 3 || shift $#
  require_job "$job" "$([[ $command == submit ]] && echo "$target" || echo "$command")"
  parse_target_args "$@"
  local py profile
  py="$(package_python)"
  profile="$(profile_for "$target")"
  "$py" -m batch_scoring.jobs.cli "$command" --job "$job" --profile "$profile" "${JOB_ARGS[@]}"
}

quickstart() {
  require_java17
  setup_venv
  local cli="$ROOT/.venv/bin/batch-score"
  "$cli" sample-data --kind bundle_sales --out "$ROOT/data/sample/bundle_sales" --if-missing
  "$cli" sample-data --kind voice_traffic --out "$ROOT/data/sample/voice_traffic" --if-missing
  "$cli" sample-model --data "$ROOT/data/sample/bundle_sales" --out "$ROOT/data/sample/models/bundle_demand" --if-missing
  cd "$ROOT"
  run_local conf/jobs/data_pricing.yaml "$@"
}

target="${1:---help}"; shift || true
case "$target" in
  quickstart) quickstart "$@" ;;
  setup) setup "$@" ;;
  local|cluster) run_spark_submit "$target" "$@" ;;
  emr|emr-serverless) run_deploy submit "$target" "$@" ;;
  schedule|unschedule) run_deploy "$target" emr-serverless "$@" ;;
  package) exec "$(package_python)" -m batch_scoring.jobs.cli package "$@" ;;
  -h|--help|help) usage ;;
  *) die "unknown target '$target'; see ./spark-submit.sh --help" ;;
esac
