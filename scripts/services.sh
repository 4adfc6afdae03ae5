#!/usr/bin/env bash
# Start the servers the tests use, if they are not running: Redis on 127.0.0.1:6379.
set -euo pipefail
if command -v redis-cli >/dev/null && redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "redis: already running on 127.0.0.1:6379"
elif command -v redis-server >/dev/null; then
  redis-server --bind 127.0.0.1 --port 6379 --daemonize yes --save "" --appendonly no >/dev/null
  for _ in $(seq 50); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.1; done
  echo "redis: started on 127.0.0.1:6379"
else
  echo "redis: redis-server not installed; Redis tests will be skipped"
fi

# PostgreSQL on 127.0.0.1:5432 with a role and database `mlsys` (password `mlsys`), for the tracking and
# HPO-storage tests (MLSYS_POSTGRES_URL, default postgresql://mlsys:mlsys@127.0.0.1:5432/mlsys)
if command -v pg_isready >/dev/null && pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  echo "postgres: already running on 127.0.0.1:5432"
elif command -v pg_ctlcluster >/dev/null && [ -n "$(pg_lsclusters -h 2>/dev/null | head -1)" ]; then
  read -r ver cluster _ < <(pg_lsclusters -h | head -1)
  pg_ctlcluster "$ver" "$cluster" start
  for _ in $(seq 100); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 0.1; done
  su postgres -c "psql -q -tAc \"SELECT 1 FROM pg_roles WHERE rolname='mlsys'\"" | grep -q 1 \
    || su postgres -c "psql -q -c \"CREATE ROLE mlsys LOGIN PASSWORD 'mlsys' CREATEDB\""
  su postgres -c "psql -q -tAc \"SELECT 1 FROM pg_database WHERE datname='mlsys'\"" | grep -q 1 \
    || su postgres -c "createdb -O mlsys mlsys"
  echo "postgres: started on 127.0.0.1:5432"
else
  echo "postgres: no PostgreSQL cluster installed; PostgreSQL tests will be skipped"
fi
