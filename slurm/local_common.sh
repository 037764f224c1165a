# Shared helpers of slurm/local_up.sh and slurm/local_down.sh (sourced, not run).
# A daemon is "ours and alive" only if its pid file in $STATE/run names a live, non-zombie process whose
# comm starts with the daemon's name: we never signal a process by name.
STATE="${SLURM_LOCAL_STATE:-/var/lib/aad-slurm-local}"

say() { echo "[slurm-local] $*"; }
die() { echo "[slurm-local] error: $*" >&2; exit 1; }

# pid of our daemon $1 if alive, else empty
our_pid() {
  local f="$STATE/run/$1.pid" pid comm st
  [ -s "$f" ] || return 0
  pid=$(tr -dc '0-9' < "$f")
  [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] || return 0
  comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
  st=$(sed -E 's/^.*\) ([A-Z]).*/\1/' "/proc/$pid/stat" 2>/dev/null || echo Z)
  [ "$st" != Z ] && [ "${comm#"$1"}" != "$comm" ] && echo "$pid"
  return 0
}

alive() { [ -n "$(our_pid "$1")" ]; }

# wait_for SECONDS CMD...: poll CMD every 0.2 s
wait_for() {
  local deadline=$(( $(date +%s) + $1 )); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -ge "$deadline" ] && return 1
    sleep 0.2
  done
}

# SIGTERM our daemon $1, wait up to 15 s, then SIGKILL; remove its pid file
stop_ours() {
  local pid; pid=$(our_pid "$1")
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    local i; for i in $(seq 75); do [ -z "$(our_pid "$1")" ] && break; sleep 0.2; done
    [ -n "$(our_pid "$1")" ] && kill -KILL "$pid" 2>/dev/null
    say "stopped $1 ($pid)"
  fi
  rm -f "$STATE/run/$1.pid"
  return 0
}

# job steps (slurmstepd + their children) can outlive a killed slurmd: kill their sessions, found through
# the steps' listening sockets under our spool dir (never by process name)
reap_orphan_steps() {
  command -v ss >/dev/null || return 0
  local pids pid sid me p
  me=$(sed -E 's/^.*\) [A-Z] [0-9]+ [0-9]+ ([0-9]+).*/\1/' /proc/$$/stat)
  pids=$(ss -xlpH 2>/dev/null | grep -F "$STATE/d/" | grep -oE 'pid=[0-9]+' | cut -d= -f2 | sort -u || true)
  for pid in $pids; do
    sid=$(sed -E 's/^.*\) [A-Z] [0-9]+ [0-9]+ ([0-9]+).*/\1/' "/proc/$pid/stat" 2>/dev/null || echo 0)
    [ "$sid" -le 1 ] || [ "$sid" = "$me" ] && continue
    for p in /proc/[0-9]*; do
      [ "$(sed -E 's/^.*\) [A-Z] [0-9]+ [0-9]+ ([0-9]+).*/\1/' "$p/stat" 2>/dev/null)" = "$sid" ] \
        && kill -KILL "${p#/proc/}" 2>/dev/null
    done
    say "reaped orphan job steps (session $sid)"
  done
  return 0
}
