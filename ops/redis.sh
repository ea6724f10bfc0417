#!/usr/bin/env bash
# ops/redis.sh start DIR | stop DIR -- a private redis-server on a unix
# socket in DIR (no TCP port, no persistence).  `start` prints the URL.
set -euo pipefail
cmd="${1:?usage: ops/redis.sh start|stop DIR}"
dir="${2:?usage: ops/redis.sh start|stop DIR}"
case "$cmd" in
  start)
    mkdir -p "$dir"
    redis-server --port 0 --unixsocket "$dir/redis.sock" --unixsocketperm 700 \
      --save '' --appendonly no --dir "$dir" --daemonize yes \
      --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" >/dev/null
    for _ in $(seq 1 100); do
      if redis-cli -s "$dir/redis.sock" ping >/dev/null 2>&1; then
        echo "unix://$dir/redis.sock"; exit 0
      fi
      sleep 0.1
    done
    echo "redis.sh: redis-server did not start, see $dir/redis.log" >&2
    exit 1 ;;
  stop)
    if [ -f "$dir/redis.pid" ]; then
      pid="$(cat "$dir/redis.pid" 2>/dev/null || true)"
      if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
          kill -0 "$pid" 2>/dev/null || break
          sleep 0.1
        done
      fi
    fi ;;
  *) echo "usage: ops/redis.sh start|stop DIR" >&2; exit 2 ;;
esac
