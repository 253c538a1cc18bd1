#!/usr/bin/env bash
# The tests need a PostgreSQL server (TANDEM_TEST_POSTGRES_URL, by default postgres on
# 127.0.0.1:5432 with trust auth). Starts the machine's cluster when it is installed but stopped.
set -euo pipefail
if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then exit 0; fi
if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
  for version in $(ls /etc/postgresql); do
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  done
fi
for _ in $(seq 1 30); do
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then exit 0; fi
  sleep 1
done
echo "PostgreSQL is not answering on 127.0.0.1:5432; the Postgres half of the tests needs it." >&2
echo "Set TANDEM_TEST_POSTGRES_URL to point the tests at another server." >&2
exit 1
