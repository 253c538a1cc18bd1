#!/usr/bin/env bash
# `make run`: Tandem with both sandboxes, until Ctrl-C (or until any of them stops).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p data
pids=()
stop_all() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop_all EXIT INT TERM

./target/release/tandem-sandbox hubspot & pids+=($!)
./target/release/tandem-sandbox pipedrive & pids+=($!)
./target/release/tandem --site-root target/site & pids+=($!)

echo "Tandem:              ${TANDEM_PUBLIC_URL:-http://${TANDEM_ADDR:-127.0.0.1:3000}}"
echo "HubSpot (Sandbox):   http://${SANDBOX_HUBSPOT_ADDR:-127.0.0.1:4101}"
echo "Pipedrive (Sandbox): http://${SANDBOX_PIPEDRIVE_ADDR:-127.0.0.1:4102}"
wait -n
