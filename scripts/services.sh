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
