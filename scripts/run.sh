#!/usr/bin/env bash
# `make run`: Tandem with its sandboxes, until Ctrl-C (or until any of them stops).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p data
pids=()
stop_all() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop_all EXIT INT TERM

# Tandem talks to the sandboxes, with the demo OAuth app they register (set these variables to
# point it at the real HubSpot, Pipedrive and Zoho CRM instead: see README).
hubspot="http://${SANDBOX_HUBSPOT_ADDR:-127.0.0.1:4101}"
pipedrive="http://${SANDBOX_PIPEDRIVE_ADDR:-127.0.0.1:4102}"
zoho="http://${SANDBOX_ZOHO_ADDR:-127.0.0.1:4103}"
export TANDEM_HUBSPOT_APP_URL="${TANDEM_HUBSPOT_APP_URL:-$hubspot}"
export TANDEM_HUBSPOT_API_URL="${TANDEM_HUBSPOT_API_URL:-$hubspot}"
export TANDEM_HUBSPOT_CLIENT_ID="${TANDEM_HUBSPOT_CLIENT_ID:-tandem-sandbox-client}"
export TANDEM_HUBSPOT_CLIENT_SECRET="${TANDEM_HUBSPOT_CLIENT_SECRET:-tandem-sandbox-secret}"
export TANDEM_PIPEDRIVE_OAUTH_URL="${TANDEM_PIPEDRIVE_OAUTH_URL:-$pipedrive}"
export TANDEM_PIPEDRIVE_CLIENT_ID="${TANDEM_PIPEDRIVE_CLIENT_ID:-tandem-sandbox-client}"
export TANDEM_PIPEDRIVE_CLIENT_SECRET="${TANDEM_PIPEDRIVE_CLIENT_SECRET:-tandem-sandbox-secret}"
export TANDEM_ZOHO_ACCOUNTS_URL="${TANDEM_ZOHO_ACCOUNTS_URL:-$zoho}"
export TANDEM_ZOHO_CLIENT_ID="${TANDEM_ZOHO_CLIENT_ID:-tandem-sandbox-client}"
export TANDEM_ZOHO_CLIENT_SECRET="${TANDEM_ZOHO_CLIENT_SECRET:-tandem-sandbox-secret}"

./target/release/tandem-sandbox hubspot & pids+=($!)
./target/release/tandem-sandbox pipedrive & pids+=($!)
./target/release/tandem-sandbox zoho & pids+=($!)
./target/release/tandem --site-root target/site & pids+=($!)

echo "Tandem:              ${TANDEM_PUBLIC_URL:-http://${TANDEM_ADDR:-127.0.0.1:3000}}"
echo "HubSpot (Sandbox):   $hubspot  (sign in as admin@hubspot-sandbox.example / sandbox)"
echo "Pipedrive (Sandbox): $pipedrive  (sign in as dana@pipedrive-sandbox.example / sandbox)"
echo "Zoho CRM (Sandbox):  $zoho  (sign in as priya@zoho-sandbox.example / sandbox)"
wait -n
