#!/usr/bin/env bash
# Starts the release build of Tandem for the browser tests, with the three sandboxes beside it (on the
# next three ports): a fresh data folder each run, so the tests start at the first-run page.
# Playwright waits for /healthz, then stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
port=${1:-3100}
hubspot_port=$((port + 1))
pipedrive_port=$((port + 2))
zoho_port=$((port + 3))
data=$(mktemp -d -t tandem-e2e-XXXXXX)
pids=()
stop_all() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$data"
}
trap stop_all EXIT INT TERM

export TANDEM_PUBLIC_URL="http://127.0.0.1:$port"
# Runs every few seconds, so the dashboards test sees its edits synced without long waits.
export TANDEM_SYNC_INTERVAL_SECS=${TANDEM_SYNC_INTERVAL_SECS:-3}
./target/release/tandem-sandbox hubspot --addr "127.0.0.1:$hubspot_port" --state "$data/hubspot.json" & pids+=($!)
./target/release/tandem-sandbox pipedrive --addr "127.0.0.1:$pipedrive_port" --state "$data/pipedrive.json" & pids+=($!)
./target/release/tandem-sandbox zoho --addr "127.0.0.1:$zoho_port" --state "$data/zoho.json" & pids+=($!)
for p in "$hubspot_port" "$pipedrive_port" "$zoho_port"; do
  for _ in $(seq 1 100); do
    curl -fs -o /dev/null "http://127.0.0.1:$p/_sandbox/faults" && break
    sleep 0.1
  done
done

export TANDEM_HUBSPOT_APP_URL="http://127.0.0.1:$hubspot_port" TANDEM_HUBSPOT_API_URL="http://127.0.0.1:$hubspot_port"
export TANDEM_PIPEDRIVE_OAUTH_URL="http://127.0.0.1:$pipedrive_port"
export TANDEM_HUBSPOT_CLIENT_ID=tandem-sandbox-client TANDEM_HUBSPOT_CLIENT_SECRET=tandem-sandbox-secret
export TANDEM_PIPEDRIVE_CLIENT_ID=tandem-sandbox-client TANDEM_PIPEDRIVE_CLIENT_SECRET=tandem-sandbox-secret
export TANDEM_ZOHO_ACCOUNTS_URL="http://127.0.0.1:$zoho_port"
export TANDEM_ZOHO_CLIENT_ID=tandem-sandbox-client TANDEM_ZOHO_CLIENT_SECRET=tandem-sandbox-secret
./target/release/tandem --addr "127.0.0.1:$port" --data-dir "$data" --site-root target/site --log "${RUST_LOG:-warn}" & pids+=($!)
wait -n
