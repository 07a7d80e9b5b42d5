#!/usr/bin/env bash
# Start any of the services the tests use that is not answering (CI machine layout).
# Exits non-zero as soon as one does not come up: CI must not go on without it.
set -euo pipefail

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {
  local name=$1 port=$2
  for _ in $(seq 1 60); do up "$port" && return 0; sleep 1; done
  echo "$name did not come up on port $port" >&2
  return 1
}

start() {
  local name=$1 port=$2; shift 2
  if up "$port"; then return 0; fi
  echo "starting $name"
  # The start command's own status is no verdict (some fail when already starting):
  # whether the port answers is.
  "$@" || true
  wait_for "$name" "$port"
}

start PostgreSQL 5432 bash -c 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start'
start MariaDB 3306 start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
start Redis 6379 redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
  --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
start RabbitMQ 5672 rabbitmq-server -detached
start NATS 4222 start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server \
  -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
# Slurm last: its accounting daemon keeps its records in the MariaDB started above. Four
# daemons started in order, so a script of their own; it exits non-zero when the node does
# not take jobs.
bash "$(dirname "$0")/slurm.sh" start
