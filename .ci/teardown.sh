#!/usr/bin/env bash
# Stop what .ci/setup.d started (only daemons started by us, by pid file).
bash "$(dirname "$0")/../slurm/local_down.sh" || true
