#!/usr/bin/env bash
# Stop the localhost SLURM cluster started by slurm/local_up.sh: cancel jobs, then stop only the daemons
# whose pid files local_up.sh wrote (never by name). Packages, config, munge key and state stay. Idempotent.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=slurm/local_common.sh
source "$HERE/local_common.sh"

if alive slurmctld; then
  jobs=$(squeue -h -o %A 2>/dev/null | sort -u)
  if [ -n "$jobs" ]; then
    # shellcheck disable=SC2086
    scancel $jobs 2>/dev/null
    wait_for 30 sh -c '[ -z "$(squeue -h -t R,CG 2>/dev/null)" ]' || say "jobs still running after 30 s"
  fi
fi
stop_ours slurmd
reap_orphan_steps
stop_ours slurmctld
stop_ours slurmdbd
stop_ours mariadbd
stop_ours munged
say "down"
