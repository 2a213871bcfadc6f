#!/usr/bin/env bash
# One entry for running batch-scoring jobs.
#
#   ./spark-submit.sh quickstart
#       Create .venv (Python 3.11) with the package and its test tools, generate the embedded
#       sample data and sample demand model if missing, and run the data-pricing job locally.
#   ./spark-submit.sh local <job.yaml> [--run-date YYYY-MM-DD] [--run-id ID] [--set field=value ...]
#       Run a job with spark-submit in local mode (profile conf/local.yaml).
#   ./spark-submit.sh --help
#
# Environment: PYTHON (interpreter for the quickstart venv, default python3.11),
# BATCH_SCORE_PYTHON (interpreter with the package installed, default .venv/bin/python),
# BATCH_SCORE_PROFILE (profile YAML for the local target, default conf/local.yaml).
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

setup_venv() {
  local base="${PYTHON:-python3.11}"
  command -v "$base" >/dev/null 2>&1 || die "Python 3.11 is required: '$base' not found (set PYTHON=/path/to/python3.11)."
  "$base" -c 'import sys; sys.exit(sys.version_info[:2] < (3, 11))' || die "$base is older than Python 3.11."
  [[ -x "$ROOT/.venv/bin/python" ]] || "$base" -m venv "$ROOT/.venv"
  echo "Installing the package and its test tools into $ROOT/.venv ..."
  "$ROOT/.venv/bin/python" -m pip install --quiet --upgrade pip
  "$ROOT/.venv/bin/python" -m pip install --quiet -e "$ROOT[dev]"
}

run_local() {
  local job="${1:-}"; shift || true
  [[ -n "$job" && -f "$job" ]] || die "give a job YAML file, e.g. ./spark-submit.sh local conf/jobs/data_pricing.yaml (got '${job}')."
  require_java17
  local py profile entry
  py="$(package_python)"
  profile="${BATCH_SCORE_PROFILE:-$ROOT/conf/local.yaml}"
  export PYSPARK_PYTHON="$py" PYSPARK_DRIVER_PYTHON="$py"
  local -a flags
  mapfile -t flags < <("$py" -m batch_scoring.jobs.cli submit-args --job "$job" --profile "$profile" "$@")
  [[ ${#flags[@]} -gt 0 ]] || exit 2
  entry="$("$py" -m batch_scoring.jobs.cli entry-point)"
  "$(dirname "$py")/spark-submit" "${flags[@]}" "$entry" --job "$job" --profile "$profile" "$@"
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
  local) run_local "$@" ;;
  -h|--help|help) usage ;;
  *) die "unknown target '$target'; see ./spark-submit.sh --help" ;;
esac
