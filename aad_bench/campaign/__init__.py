"""Campaigns: Hydra multirun sweeps sent to SLURM (or run locally) with a job index, resume and relaunch.

A campaign folder holds ``index.jsonl`` (one line per job event; latest line per job wins), ``runs/`` (the run
folders), ``launches/<n>/`` (one Hydra sweep dir + submitit folder per launch, never reused) and ``code/<n>/``
(the code snapshot each launch's jobs import). See docs/slurm.md.
"""

from aad_bench.campaign.index import CampaignIndex
from aad_bench.campaign.preflight import CampaignError

__all__ = ["CampaignError", "CampaignIndex"]
