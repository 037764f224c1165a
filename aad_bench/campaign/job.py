"""What a campaign job runs: one Hydra sweep job inside SLURM (or a local submitit process), indexed.

This object, not the launcher, is what submitit pickles: the launcher class lives under Hydra's plugin alias
module, which a fresh job process could not import.
"""

from __future__ import annotations

import os
from typing import Any

from hydra.core.utils import JobReturn

from aad_bench.campaign import jobstate
from aad_bench.campaign.distributed import export_distributed_env
from aad_bench.campaign.index import CampaignIndex


def singleton_state() -> dict[str, Any]:
    """Hydra's singleton state for the jobs, minus the plugin registry (it holds the launcher classes)."""
    from hydra.core.plugins import Plugins
    from hydra.core.singleton import Singleton

    state = Singleton.get_state()
    return {**state, "instances": {k: v for k, v in state["instances"].items() if k is not Plugins}}


class CampaignJob:
    """Callable submitted per sweep job; submitit calls :meth:`checkpoint` on preemption / time-out."""

    def __init__(self, hydra_context: Any, config: Any, task_function: Any, campaign_root: str,
                 jobmap: dict[int, dict[str, Any]], code_root: str) -> None:
        self.hydra_context, self.config, self.task_function = hydra_context, config, task_function
        self.campaign_root, self.jobmap, self.code_root = campaign_root, jobmap, code_root

    def _index(self, job_num: int) -> tuple[CampaignIndex | None, int]:
        """The index to write to, only from rank 0 of a multi-task job."""
        import submitit

        meta = self.jobmap.get(job_num)
        if meta is None or submitit.JobEnvironment().global_rank != 0:
            return None, -1
        return CampaignIndex(self.campaign_root), int(meta["job"])

    def __call__(self, overrides: list[str], job_dir_key: str, job_num: int, state: dict) -> JobReturn:
        """Run one Hydra job with ``overrides``: index it, export the distributed env, index the outcome.

        A job with N tasks is one distributed run: every task runs the same job (``RANK``/``WORLD_SIZE`` set for
        ``aad_bench.engine``); only rank 0 writes the index, Hydra's files and the run folder.
        """
        import submitit
        from hydra.core.singleton import Singleton
        from hydra.core.utils import run_job, setup_globals
        from omegaconf import open_dict

        env = submitit.JobEnvironment()
        os.environ["AAD_BENCH_RAISE"] = "1"  # a config error must fail the job with its message, not exit(2)
        if env.num_tasks > 1:
            export_distributed_env()
        index, job = self._index(job_num)
        if index is not None:
            index.record(job, "running", slurm_job_id=str(env.job_id), host=env.hostname,
                         restarts=int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0))
        Singleton.set_state(state)
        setup_globals()
        jobstate.use_snapshot_configs(self.hydra_context, self.code_root)
        cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        with open_dict(cfg.hydra.job) as hj:
            hj.id = str(env.job_id)
            hj.num = job_num
        main = env.global_rank == 0
        if not main:  # one job = one training run: only rank 0 writes the job's .hydra/ files and log file
            with open_dict(cfg.hydra):
                cfg.hydra.output_subdir = None
        ret = run_job(hydra_context=self.hydra_context, task_function=self.task_function, config=cfg,
                      job_dir_key=job_dir_key, job_subdir_key="hydra.sweep.subdir", configure_logging=main)
        if index is not None:
            jobstate.record_return(index, job, ret)
        return ret

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """Preempted or timed out: note it, resubmit the same overrides (the task resumes)."""
        import submitit

        index, job = self._index(args[2]) if len(args) > 2 else (None, -1)
        if index is not None:
            index.record(job, "pending", note="preempted or timed out: requeued, resumes from its checkpoint")
        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)
