#!/usr/bin/env bash
# Bring up a real single-node SLURM cluster on localhost (munge, slurmctld, slurmd, and by default slurmdbd
# with a private MariaDB, because submitit needs `sacct` to notice jobs SLURM killed).
# Idempotent: installs only missing packages, rewrites config only when it changed, starts only daemons that
# are not running, and waits until the node accepts jobs. Stop with slurm/local_down.sh.
#
# Knobs (env): SLURM_LOCAL_STATE (/var/lib/aad-slurm-local), SLURM_LOCAL_ACCOUNTING (1; 0 = none),
# SLURM_LOCAL_CPUS / SLURM_LOCAL_MEM_MB (default from `slurmd -C`), SLURM_LOCAL_DB_PORT (3307),
# SLURM_LOCAL_TIMEOUT (120 s), SLURM_LOCAL_KEEP_STATE (0; 1 = never wipe queue/spool/db on a fresh start).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=slurm/local_common.sh
source "$HERE/local_common.sh"

ACCOUNTING="${SLURM_LOCAL_ACCOUNTING:-1}"
DB_PORT="${SLURM_LOCAL_DB_PORT:-3307}"
TIMEOUT="${SLURM_LOCAL_TIMEOUT:-120}"
KEEP_STATE="${SLURM_LOCAL_KEEP_STATE:-0}"
CONF=/etc/slurm/slurm.conf
DBD_CONF=/etc/slurm/slurmdbd.conf
MARK="# managed by aad_bench slurm/local_up.sh"
T0=$(date +%s.%N)

install_packages() {
  local pkgs=(slurmctld slurmd slurm-client munge) missing=() p
  [ "$ACCOUNTING" = 1 ] && pkgs+=(slurmdbd slurm-wlm-mysql-plugin mariadb-server)
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing: ${missing[*]}"
  # keep postinst scripts from starting daemons with the stock config
  local made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; made_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
  return 0
}

# next job id: never below what an earlier cluster handed out (reused ids return stale submitit results)
next_job_id() {
  local first=1 hi
  [ -f "$STATE/first_job_id" ] && first=$(cat "$STATE/first_job_id")
  if [ -f "$STATE/log/slurmctld.log" ]; then
    hi=$(grep -oE 'JobId=[0-9]+' "$STATE/log/slurmctld.log" | grep -oE '[0-9]+' | sort -n | tail -1 || true)
    [ -n "$hi" ] && [ "$((hi + 1))" -gt "$first" ] && first=$((hi + 1))
  fi
  [ "$first" -ge 60000000 ] && first=1
  echo "$first"
}

fresh_start() {
  [ "$KEEP_STATE" = 1 ] && return 0
  say "fresh start (state: $STATE)"
  stop_ours slurmd; reap_orphan_steps; stop_ours slurmdbd; stop_ours mariadbd
  mkdir -p "$STATE/log"
  next_job_id > "$STATE/first_job_id.new"; mv "$STATE/first_job_id.new" "$STATE/first_job_id"
  rm -rf "$STATE/ctld" "$STATE/d" "$STATE/db"
  local f; for f in "$STATE"/log/*.log; do [ -e "$f" ] && mv "$f" "$f.prev"; done
  return 0
}

start_munge() {
  install -d -o munge -g munge -m 700 /etc/munge
  if [ ! -s /etc/munge/munge.key ]; then
    mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null \
      || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
  install -d -o munge -g munge -m 755 /run/munge
  install -d -o munge -g munge -m 711 /var/lib/munge
  install -d -o munge -g munge -m 700 /var/log/munge
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then return 0; fi
  rm -f /run/munge/munged.pid
  runuser -u munge -- /usr/sbin/munged --force
  wait_for 10 test -s /run/munge/munged.pid || die "munged did not write its pid file"
  cp /run/munge/munged.pid "$STATE/run/munged.pid"
  wait_for 10 sh -c 'munge -n | unmunge >/dev/null 2>&1' || die "munge does not work"
}

write_slurm_conf() {
  local cpus mem acct new
  cpus="${SLURM_LOCAL_CPUS:-$(slurmd -C | grep -oE 'CPUs=[0-9]+' | cut -d= -f2)}"
  mem="${SLURM_LOCAL_MEM_MB:-$(( $(slurmd -C | grep -oE 'RealMemory=[0-9]+' | cut -d= -f2) - 512 ))}"
  acct=accounting_storage/none
  [ "$ACCOUNTING" = 1 ] && acct=accounting_storage/slurmdbd
  new=$(cat <<EOF
$MARK
ClusterName=localci
FirstJobId=$(cat "$STATE/first_job_id" 2>/dev/null || echo 1)
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# short credential lifetime: a requeued job restarts after ~10 s instead of 120 s
AuthInfo=cred_expire=10
MailProg=/bin/true
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
AccountingStorageType=$acct
AccountingStorageHost=localhost
AccountingStoragePort=6819
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# without a default a job lacking --mem would take the whole node
DefMemPerCPU=1000
ReturnToService=2
# submitit ignores SIGTERM; do not wait 30 s before SIGKILL
KillWait=5
SlurmctldTimeout=30
SlurmdTimeout=30
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
)
  mkdir -p /etc/slurm
  if [ -f "$CONF" ] && [ "$(cat "$CONF")" = "$new" ]; then return 0; fi
  if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then cp "$CONF" "$CONF.bak.$(date +%s)"; fi
  say "writing $CONF"
  printf '%s\n' "$new" > "$CONF"; chmod 644 "$CONF"
  # both daemons must see the same config ("Node appears to have a different slurm.conf")
  stop_ours slurmd; stop_ours slurmctld
}

start_accounting() {
  [ "$ACCOUNTING" = 1 ] || return 0
  local db="$STATE/db" sock="$STATE/db/mysqld.sock" pass
  # mariadbd runs as mysql: it must own its folder and reach it through $STATE
  chmod 755 "$STATE"; install -d -o mysql -g mysql -m 750 "$db"
  if [ ! -d "$db/data/mysql" ]; then
    mariadb-install-db --no-defaults --user=mysql --datadir="$db/data" \
      --auth-root-authentication-method=socket --skip-test-db >"$STATE/log/mariadb-install.log" 2>&1
  fi
  if ! alive mariadbd; then
    setsid /usr/sbin/mariadbd --no-defaults --user=mysql --datadir="$db/data" --socket="$sock" \
      --port="$DB_PORT" --bind-address=127.0.0.1 --pid-file="$db/mariadbd.pid" \
      --log-error="$db/mariadbd.err" --innodb-buffer-pool-size=64M --skip-log-bin </dev/null >/dev/null 2>&1 &
    wait_for 60 mariadb-admin --no-defaults -S "$sock" -u root ping || die "mariadbd did not start"
    wait_for 10 test -s "$db/mariadbd.pid"; cp "$db/mariadbd.pid" "$STATE/run/mariadbd.pid"
  fi
  [ -s "$STATE/db_pass" ] || { head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$STATE/db_pass"; }
  pass=$(cat "$STATE/db_pass"); chmod 600 "$STATE/db_pass"
  mariadb --no-defaults -S "$sock" -u root <<EOF
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$pass';
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$pass';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
EOF
  local new
  new=$(printf '%s\n' "$MARK" AuthType=auth/munge DbdHost=localhost DbdAddr=127.0.0.1 DbdPort=6819 \
    SlurmUser=root "PidFile=$STATE/run/slurmdbd.pid" "LogFile=$STATE/log/slurmdbd.log" \
    StorageType=accounting_storage/mysql StorageHost=127.0.0.1 "StoragePort=$DB_PORT" StorageUser=slurm \
    "StoragePass=$pass" StorageLoc=slurm_acct_db)
  if [ ! -f "$DBD_CONF" ] || [ "$(cat "$DBD_CONF")" != "$new" ]; then
    printf '%s\n' "$new" > "$DBD_CONF"; stop_ours slurmdbd
  fi
  chown root:root "$DBD_CONF"; chmod 600 "$DBD_CONF"
  alive slurmdbd || /usr/sbin/slurmdbd
  wait_for 60 timeout 5 sacctmgr -n show cluster || die "slurmdbd does not answer (see $STATE/log/slurmdbd.log)"
  sacctmgr -n -P show cluster format=cluster | grep -qx localci || sacctmgr -i add cluster localci >/dev/null
}

wait_ready() {
  local deadline=$(( $(date +%s) + TIMEOUT )) st
  while :; do
    st=$(sinfo -h -n localhost -o %T 2>/dev/null | head -1 || true)
    case "$st" in
      idle*|mixed*|allocated*|completing*) break ;;
      drain*|down*|fail*) scontrol update nodename=localhost state=resume >/dev/null 2>&1 || true ;;
    esac
    [ "$(date +%s)" -ge "$deadline" ] && die "node not ready after ${TIMEOUT}s (state '$st'; logs in $STATE/log)"
    sleep 0.2
  done
  timeout $(( deadline - $(date +%s) + 1 )) srun -N1 -n1 -t1 true || die "smoke test 'srun true' failed"
  if [ "$ACCOUNTING" = 1 ]; then sacct -n -X -j 1 >/dev/null || die "sacct does not answer"; fi
}

main() {
  [ "$(id -u)" = 0 ] || die "must run as root"
  install_packages
  mkdir -p "$STATE/run" "$STATE/log"
  alive slurmctld || fresh_start
  mkdir -p "$STATE/run" "$STATE/log" "$STATE/ctld" "$STATE/d"
  start_munge
  write_slurm_conf
  start_accounting
  alive slurmctld || /usr/sbin/slurmctld
  # -N pins the node name: the host is not called localhost
  alive slurmd || /usr/sbin/slurmd -N localhost
  wait_ready
  say "up in $(awk -v a="$T0" -v b="$(date +%s.%N)" "BEGIN{printf \"%.1f\", b-a}") s: $(sinfo -h -o '%P %D %T %c CPUs %m MB' | head -1); $(slurmd -V)"
}

main "$@"
