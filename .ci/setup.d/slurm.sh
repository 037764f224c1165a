#!/usr/bin/env bash
# Local single-node SLURM cluster (with accounting) for the @pytest.mark.slurm tests.
set -euo pipefail
bash "$(dirname "$0")/../../slurm/local_up.sh"
