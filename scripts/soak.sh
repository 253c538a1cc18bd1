#!/usr/bin/env bash
# Runs test suites over and over and prints the failures by test: the hunt for flaky tests and
# stalled pages. Not part of `make test`.
#
#   scripts/soak.sh                 the web suite 200 times, then the browser suite 20 times
#   scripts/soak.sh web 50          `cargo test -p tandem --test web` (debug build) 50 times
#   scripts/soak.sh browser 5       the Playwright suite (release build) 5 times
#   scripts/soak.sh rust 10         every Rust test of the workspace 10 times
#
# Each run's output is kept under target/soak/<suite>-<n>.log. A run that takes longer than
# SOAK_RUN_TIMEOUT seconds (default 900) is stopped and counted as a stall.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/end2end/node_modules/.bin:$HOME/.cargo/bin:$PATH"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

run_timeout=${SOAK_RUN_TIMEOUT:-900}
logs=target/soak
mkdir -p "$logs"

# Prints "<count> <test>" for every test that failed at least once, from files of one failing
# test name per line.
tally() {
  sort "$@" 2>/dev/null | uniq -c | sort -rn
}

# The test executables of a `cargo test` selection, built once (not the binaries the tests run).
test_binaries() {
  cargo test "$@" --no-run --message-format=json 2>/dev/null |
    grep '"profile":{[^}]*"test":true' |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p'
}

soak_rust() {
  local suite=$1 runs=$2
  shift 2
  scripts/ensure-postgres.sh
  echo "==> building the $suite tests"
  cargo test "$@" --no-run || exit 1
  mapfile -t binaries < <(test_binaries "$@")
  local failed_runs=0 failures="$logs/$suite-failures.txt"
  : >"$failures"
  local started=$SECONDS
  for run in $(seq 1 "$runs"); do
    local log="$logs/$suite-$run.log" ok=1
    : >"$log"
    for binary in "${binaries[@]}"; do
      timeout --signal=KILL "$run_timeout" "$binary" >>"$log" 2>&1
      case $? in
        0) ;;
        137) ok=0; echo "$(basename "$binary"): the run stalled (stopped after ${run_timeout}s)" >>"$failures" ;;
        *) ok=0 ;;
      esac
    done
    sed -n 's/^test \(.*\) \.\.\. FAILED$/\1/p' "$log" >>"$failures"
    if [ "$ok" = 0 ]; then
      failed_runs=$((failed_runs + 1))
      echo "run $run/$runs: FAILED (see $log)"
    else
      echo "run $run/$runs: ok"
    fi
  done
  echo
  echo "== $suite: $runs runs in $((SECONDS - started)) s, $failed_runs failed"
  tally "$failures"
  [ "$failed_runs" = 0 ]
}

soak_browser() {
  local runs=$1
  make build >/dev/null || exit 1
  scripts/ensure-tools.sh browser
  local failed_runs=0 failures="$logs/browser-failures.txt"
  : >"$failures"
  local started=$SECONDS
  for run in $(seq 1 "$runs"); do
    local log="$logs/browser-$run.log" report="$logs/browser-$run.json"
    (cd end2end && PLAYWRIGHT_JSON_OUTPUT_NAME="../$report" timeout --signal=KILL "$run_timeout" \
      npx playwright test --reporter=list,json) >"$log" 2>&1
    local status=$?
    node -e '
      const report = require(process.argv[1]);
      const walk = (suite, path) => {
        for (const spec of suite.specs || []) {
          for (const test of spec.tests || []) {
            if (test.status !== "expected" && test.status !== "skipped") console.log(`${spec.file} › ${spec.title}`);
          }
        }
        for (const child of suite.suites || []) walk(child, path);
      };
      for (const suite of report.suites || []) walk(suite, "");
    ' "$PWD/$report" >>"$failures" 2>/dev/null
    if [ "$status" = 137 ]; then echo "browser suite: the run stalled (stopped after ${run_timeout}s)" >>"$failures"; fi
    if [ "$status" != 0 ]; then
      failed_runs=$((failed_runs + 1))
      # Keep the failure's screenshots and error context (the next run clears test-results).
      rm -rf "$logs/browser-$run-results" && cp -r end2end/test-results "$logs/browser-$run-results" 2>/dev/null
      echo "run $run/$runs: FAILED (see $log and $logs/browser-$run-results)"
    else
      echo "run $run/$runs: ok"
    fi
  done
  echo
  echo "== browser: $runs runs in $((SECONDS - started)) s, $failed_runs failed"
  tally "$failures"
  [ "$failed_runs" = 0 ]
}

case "${1:-all}" in
  web) soak_rust web "${2:-200}" -p tandem --test web ;;
  rust) soak_rust rust "${2:-10}" --workspace --exclude frontend ;;
  browser) soak_browser "${2:-20}" ;;
  all)
    soak_rust web 200 -p tandem --test web
    web=$?
    soak_browser 20
    browser=$?
    [ "$web" = 0 ] && [ "$browser" = 0 ]
    ;;
  *)
    sed -n '2,11p' "$0"
    exit 2
    ;;
esac
