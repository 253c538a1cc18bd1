#!/usr/bin/env bash
# Starts the release build of Tandem for the browser tests: a fresh data folder each run, so the
# tests start at the first-run page. Playwright waits for /healthz, then stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
port=${1:-3100}
data=$(mktemp -d -t tandem-e2e-XXXXXX)
trap 'rm -rf "$data"' EXIT
./target/release/tandem --addr "127.0.0.1:$port" --data-dir "$data" --site-root target/site --log "${RUST_LOG:-warn}" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$data"' EXIT INT TERM
wait $server
