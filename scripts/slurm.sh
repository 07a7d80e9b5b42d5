#!/usr/bin/env bash
# A single-node Slurm cluster for the tests and CI: munged, slurmdbd (accounting on the local
# MariaDB), slurmctld and slurmd, started directly from the shell (there is no systemd).
#
#   scripts/slurm.sh start           start whatever is down (idempotent; ~3 s cold, <1 s warm)
#   scripts/slurm.sh status          exit 0 when the node takes jobs
#   scripts/slurm.sh stop [--purge]  stop the daemons; --purge also drops state and database
#   scripts/slurm.sh kill DAEMON     stop one daemon (slurmctld, slurmd, slurmdbd) by its pid:
#                                    the tests take the controller away mid-job with it
#
# Everything lives under $STRATO_SLURM_STATE (config, state, logs, pidfiles). Clients find the
# cluster through SLURM_CONF=$STATE/etc/slurm.conf, or /etc/slurm/slurm.conf, which is made a
# symlink to it. Settings: SLURM_CPUS (CPUs the node advertises, default 8: jobs that sleep
# need no real core, and 2 slots make a queue of trivial jobs wait on the scheduler's 1 s
# tick), SLURM_ACCOUNTING=auto|slurmdbd|jobcomp (auto: slurmdbd when MariaDB answers).
set -euo pipefail

STATE=${STRATO_SLURM_STATE:-/var/lib/strato-slurm}
CPUS=${SLURM_CPUS:-8}
ACCOUNTING=${SLURM_ACCOUNTING:-auto}
DB=${STRATO_SLURM_DB:-strato_slurm_acct}
DB_HOST=127.0.0.1
DB_PORT=3306
CLUSTER=strato
export SLURM_CONF=$STATE/etc/slurm.conf
MUNGE_PID=/run/munge/munged.pid

log() { echo "slurm: $*" >&2; }
die() { log "$*"; exit 1; }
port_up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pid_of() { [ -s "$STATE/run/$1.pid" ] && cat "$STATE/run/$1.pid"; }
alive() { local p; p=$(pid_of "$1") && kill -0 "$p" 2>/dev/null; }
munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }
ctld_up() { scontrol ping 2>/dev/null | grep -q 'is UP'; }

# Polls instead of sleeping a fixed time: every step's duration varies with the machine's load.
wait_until() {
  local what=$1 tries=$2; shift 2
  for _ in $(seq 1 "$tries"); do "$@" && return 0; sleep 0.1; done
  die "$what did not come up (logs in $STATE/log)"
}

installed() {
  local bin
  for bin in munged munge slurmctld slurmd slurmdbd sbatch scontrol; do
    command -v "$bin" >/dev/null || return 1
  done
}

accounting_mode() {
  case $ACCOUNTING in
    slurmdbd | jobcomp) echo "$ACCOUNTING" ;;
    auto) if port_up "$DB_PORT" && command -v mysql >/dev/null; then echo slurmdbd; else echo jobcomp; fi ;;
    *) die "SLURM_ACCOUNTING must be auto, slurmdbd or jobcomp, not $ACCOUNTING" ;;
  esac
}

# Writes the configs; prints "changed" when slurm.conf differs from the one in place, because
# `scontrol reconfigure` does not pick up a node's CPUs or the accounting type: the daemons
# must be restarted.
write_configs() {
  local mode=$1 real_cpus mem storage extra="" new
  mkdir -p "$STATE"/{etc,log,run,state/ctld,state/d}
  real_cpus=$(nproc)
  mem=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
  if [ "$mode" = slurmdbd ]; then storage=accounting_storage/slurmdbd; else storage=accounting_storage/none; fi
  # A node configured with more CPUs than it has is drained unless told to trust the config.
  if [ "$CPUS" -gt "$real_cpus" ]; then extra="SlurmdParameters=config_overrides"; fi
  new=$(
    cat <<EOF
# Written by scripts/slurm.sh; edits are overwritten.
ClusterName=$CLUSTER
SlurmctldHost=localhost
SlurmUser=root
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
StateSaveLocation=$STATE/state/ctld
SlurmdSpoolDir=$STATE/state/d
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
# The default delay of 3 s started queued jobs only in bursts.
SchedulerParameters=batch_sched_delay=0
MpiDefault=none
# There is no /bin/mail.
MailProg=/bin/true
ReturnToService=2
MinJobAge=300
KillWait=5
AccountingStorageType=$storage
AccountingStorageHost=localhost
AccountingStoragePort=6819
JobCompType=jobcomp/filetxt
JobCompLoc=$STATE/log/jobcomp.txt
$extra
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  )
  # slurmdbd refuses a config readable by others (it could hold the database password).
  (
    umask 077
    cat >"$STATE/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=root
LogFile=$STATE/log/slurmdbd.log
PidFile=$STATE/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=$DB_HOST
StoragePort=$DB_PORT
StorageUser=root
StorageLoc=$DB
EOF
  )
  if [ -f "$SLURM_CONF" ] && [ "$(cat "$SLURM_CONF")" = "$new" ]; then return 0; fi
  local had=0
  [ -f "$SLURM_CONF" ] && had=1
  printf '%s\n' "$new" >"$SLURM_CONF.new"
  mv "$SLURM_CONF.new" "$SLURM_CONF"
  if [ "$had" = 1 ]; then echo changed; fi
}

# Clients started without SLURM_CONF (a test process, a shell) read /etc/slurm/slurm.conf.
link_config() {
  mkdir -p /etc/slurm
  local link=/etc/slurm/slurm.conf
  if [ -L "$link" ] || [ ! -e "$link" ]; then
    ln -sfn "$SLURM_CONF" "$link"
  elif [ "$(readlink -f "$link")" != "$(readlink -f "$SLURM_CONF")" ]; then
    log "note: $link is another cluster's config; clients need SLURM_CONF=$SLURM_CONF"
  fi
}

start_munge() {
  munge_ok && return 0
  install -d -o munge -g munge -m 0755 /run/munge
  if [ ! -s /etc/munge/munge.key ]; then die "/etc/munge/munge.key is missing (reinstall munge)"; fi
  # munged removes a stale socket left by one that was killed by itself.
  runuser -u munge -- /usr/sbin/munged
  wait_until munged 100 munge_ok
}

refuse_port() {
  if port_up "$2"; then die "port $2 is taken by something that is not this cluster's $1"; fi
}

start_slurmdbd() {
  alive slurmdbd && return 0
  refuse_port slurmdbd 6819
  port_up "$DB_PORT" || die "MariaDB does not answer on $DB_HOST:$DB_PORT (SLURM_ACCOUNTING=jobcomp works without it)"
  mysql -uroot -h"$DB_HOST" -P"$DB_PORT" -e "CREATE DATABASE IF NOT EXISTS \`$DB\`"
  slurmdbd
  wait_until slurmdbd 200 port_up 6819
}

start_slurmctld() {
  alive slurmctld && return 0
  refuse_port slurmctld 6817
  slurmctld
  wait_until slurmctld 300 ctld_up
}

node_ready() {
  sinfo -h -n localhost -o '%T' 2>/dev/null | grep -Eq '^(idle|mixed|allocated|completing)'
}

start_slurmd() {
  if ! alive slurmd; then
    refuse_port slurmd 6818
    # -N: the node's name in slurm.conf, whatever `hostname` says.
    slurmd -N localhost
  fi
  wait_until "slurmd (node localhost)" 300 node_ready
}

stop_daemon() {
  local name=$1 p
  if [ "$name" = munged ]; then
    p=$([ -s "$MUNGE_PID" ] && cat "$MUNGE_PID") || return 0
  else
    p=$(pid_of "$name") || return 0
  fi
  kill -TERM "$p" 2>/dev/null || return 0
  # slurmctld saves its state before it exits: about 3 s.
  for _ in $(seq 1 300); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
  die "$name (pid $p) did not stop"
}

cmd_start() {
  installed || die "Slurm is not installed (scripts/test-deps.sh installs Debian's slurmctld slurmd slurm-client slurmdbd munge)"
  local mode changed
  mode=$(accounting_mode)
  changed=$(write_configs "$mode")
  link_config
  if [ "$changed" = changed ]; then
    log "slurm.conf changed: restarting slurmd and slurmctld (jobs are kept in the state directory)"
    stop_daemon slurmd
    stop_daemon slurmctld
  fi
  start_munge
  if [ "$mode" = slurmdbd ]; then start_slurmdbd; fi
  start_slurmctld
  start_slurmd
}

cmd_status() {
  local name ok=0
  for name in slurmdbd slurmctld slurmd; do
    if alive "$name"; then echo "$name: running (pid $(pid_of "$name"))"; else echo "$name: stopped"; fi
  done
  if munge_ok; then echo "munged: running"; else echo "munged: stopped"; ok=1; fi
  if node_ready; then sinfo; else echo "node: not taking jobs"; ok=1; fi
  return "$ok"
}

cmd_stop() {
  local purge=${1:-}
  if ctld_up; then
    local jobs
    jobs=$(squeue -h -o %A 2>/dev/null || true)
    # shellcheck disable=SC2086
    if [ -n "$jobs" ]; then scancel $jobs || true; fi
  fi
  stop_daemon slurmd
  stop_daemon slurmctld
  stop_daemon slurmdbd
  stop_daemon munged
  if [ "$purge" = --purge ]; then
    # Job ids restart at 1 with a new state directory: the old accounting records must go too.
    if port_up "$DB_PORT" && command -v mysql >/dev/null; then
      mysql -uroot -h"$DB_HOST" -P"$DB_PORT" -e "DROP DATABASE IF EXISTS \`$DB\`"
    fi
    if [ "$(readlink /etc/slurm/slurm.conf 2>/dev/null)" = "$SLURM_CONF" ]; then rm -f /etc/slurm/slurm.conf; fi
    rm -rf "$STATE"
  fi
}

case ${1:-} in
  start) cmd_start ;;
  status) cmd_status ;;
  stop) cmd_stop "${2:-}" ;;
  kill)
    case ${2:-} in
      slurmctld | slurmd | slurmdbd) stop_daemon "$2" ;;
      *) die "kill what: slurmctld, slurmd or slurmdbd" ;;
    esac
    ;;
  *) die "usage: $0 start | status | stop [--purge] | kill slurmctld|slurmd|slurmdbd" ;;
esac
