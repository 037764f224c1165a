"""Hydra launchers that run a sweep as a campaign: submitit (SLURM array or local processes) + job index.

``slurm=<preset>`` selects ``hydra/launcher: aad_slurm`` (or ``aad_local``). Compared with the plain
hydra-submitit launchers these

* check the cluster before submitting (reachable, partition, resources) and stop with one error line;
* skip jobs whose run folder is finished/diverged, jobs still queued, and failed jobs unless ``retry_failed``;
* give every launch its own submitit folder (a reused one can hand back a stale ``_result.pkl``);
* snapshot the code and make jobs import it (``AAD_BENCH_SNAPSHOT`` + git SHA land in provenance);
* record every job in ``<campaign>/index.jsonl`` from the submitter *and* from inside the job, so the index
  stays right when the submitting shell is gone;
* export the torch.distributed env (rank, world size, master addr/port) in multi-task jobs.

Preemption: submitit calls ``CampaignJob.checkpoint`` on USR2; it resubmits the same overrides, the job maps
to the same run folder (``config.run_dir`` is derived from the config) and the task resumes from its own latest
checkpoint.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra_plugins.hydra_submitit_launcher.config import LocalQueueConf, SlurmQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import LocalLauncher, SlurmLauncher

from aad_bench.campaign import jobstate
from aad_bench.campaign.index import CampaignIndex
from aad_bench.campaign.job import CampaignJob, singleton_state
from aad_bench.campaign.preflight import CampaignError, check_slurm_params
from aad_bench.campaign.snapshot import make_snapshot, snapshot_env
from aad_bench.config import run_dir
from aad_bench.schema import problems
from aad_bench.utils import outcome
from aad_bench.utils.ownership import FolderBusyError
from aad_bench.utils.provenance import REPO_ROOT

log = logging.getLogger(__name__)
# Hydra instantiates launchers only from the ``hydra_plugins`` namespace: the plugin module there re-exports the
# classes below and stores their configs; jobs never unpickle them (they run a CampaignJob).
PLUGIN_MODULE = "hydra_plugins.aad_bench_campaign"


@dataclass
class AadSlurmConf(SlurmQueueConf):
    """``submitit_slurm`` plus campaign options."""

    _target_: str = f"{PLUGIN_MODULE}.CampaignSlurmLauncher"
    retry_failed: bool = False  # rerun jobs whose last attempt failed
    snapshot: bool = True  # jobs import a copy of the code taken at submission
    check_cluster: bool = True  # sinfo / partition / resource checks before submitting


@dataclass
class AadLocalConf(LocalQueueConf):
    """``submitit_local`` plus campaign options (no SLURM)."""

    _target_: str = f"{PLUGIN_MODULE}.CampaignLocalLauncher"
    retry_failed: bool = False
    snapshot: bool = True


class _CampaignLauncher:
    """Mixin over a hydra-submitit launcher; ``_EXECUTOR`` comes from the base class."""

    _EXECUTOR: str

    def __init__(self, retry_failed: bool = False, snapshot: bool = True, check_cluster: bool = True,
                 **params: Any) -> None:
        super().__init__(**params)  # type: ignore[call-arg]
        self.retry_failed = bool(retry_failed)
        self.use_snapshot = bool(snapshot)
        self.check_cluster = bool(check_cluster) and self._EXECUTOR == "slurm"

    # -- submitter side ----------------------------------------------------------------------------
    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        """Plan (skip / submit), submit as one array, wait, index; returns one JobReturn per sweep job."""
        cfg = self.config  # type: ignore[attr-defined]
        sweep_dir = Path(str(cfg.hydra.sweep.dir)).resolve()
        index = CampaignIndex(cfg.campaign if cfg.get("campaign") else sweep_dir)
        try:
            if self.check_cluster:
                check_slurm_params(self.params)  # type: ignore[attr-defined]
            plan = self._plan(index, job_overrides, initial_job_idx)
            folder = sweep_dir / ".submitit"
            if any(p["submit"] for p in plan) and folder.exists() and any(folder.iterdir()):
                raise CampaignError(f"submitit folder {folder} was used by an earlier launch (stale results "
                                    "risk): launch with a new hydra.sweep.dir")
        except CampaignError as e:
            print(f"aad-bench: error: {e}", file=sys.stderr)
            sys.exit(2)
        returns = {p["idx"]: p.get("ret") for p in plan}
        todo = [p for p in plan if p["submit"]]
        if todo:
            returns.update(self._submit_and_wait(index, sweep_dir, todo))
        self._summary(index, plan)
        return [returns[p["idx"]] for p in plan]

    def _plan(self, index: CampaignIndex, job_overrides: Sequence[Sequence[str]], first: int) -> list[dict]:
        loader = self.hydra_context.config_loader  # type: ignore[attr-defined]
        plan, taken = [], set()
        for k, ov in enumerate(job_overrides):
            ov = list(ov)
            task_cfg = _task_config(loader.load_sweep_config(self.config, ov))  # type: ignore[attr-defined]
            rd = run_dir(task_cfg).resolve()
            num = index.job_number(str(rd), taken)
            taken.add(num)
            prev = index.latest().get(num, {})
            decision, value = jobstate.decide(prev, rd, self.retry_failed)
            if decision == "submit" and (bad := problems(task_cfg)):  # before any work: not submitted at all
                decision, value = "invalid config", {"status": "failed", "error": f"ConfigError: {bad[0]}"}
                print(f"aad-bench: error: job {num} ({' '.join(ov)}): {bad[0]}", file=sys.stderr)
                outcome.note_failure(bad[0])
            p = {"idx": first + k, "num": num, "overrides": ov, "run_dir": str(rd),
                 "submit": decision == "submit"}
            if decision != "submit":
                if value.get("status") and (value["status"] != prev.get("status") or decision == "invalid config"):
                    index.record(num, value["status"], overrides=ov, run_dir=str(rd), note=decision,
                                 error=value.get("error"))
                p["ret"] = JobReturn(overrides=ov, status=JobStatus.COMPLETED, _return_value=value)
                p["skip"] = decision
            plan.append(p)
        return plan

    def _executor(self, folder: Path) -> Any:
        """The submitit executor, configured like the base launcher does (init keys vs parameters)."""
        import submitit
        from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
        from omegaconf import OmegaConf

        params = dict(self.params)  # type: ignore[attr-defined]
        init = {"folder": str(folder / "%j")}
        if "max_num_timeout" in params:
            init[f"{self._EXECUTOR}_max_num_timeout"] = params["max_num_timeout"]
        ex = submitit.AutoExecutor(cluster=self._EXECUTOR, **init)
        base = set(OmegaConf.structured(BaseQueueConf).keys())
        skip = {"submitit_folder", "max_num_timeout"}
        ex.update_parameters(**{k if k in base else f"{self._EXECUTOR}_{k}": v
                                for k, v in params.items() if k not in skip})
        return ex

    def _submit_and_wait(self, index: CampaignIndex, sweep_dir: Path,
                         todo: list[dict]) -> dict[int, JobReturn]:
        sweep_dir.mkdir(parents=True, exist_ok=True)
        jobmap = {p["idx"]: {"job": p["num"], "run_dir": p["run_dir"]} for p in todo}
        runner = CampaignJob(self.hydra_context, self.config, self.task_function,  # type: ignore[attr-defined]
                             str(index.root), jobmap, str(REPO_ROOT))
        env: dict[str, str] = {}
        snap: dict[str, Any] = {}
        if self.use_snapshot:
            stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{sweep_dir.name}"
            snap = make_snapshot(index.root / "code" / stamp)
            env = snapshot_env(snap)
        executor = self._executor(sweep_dir / ".submitit")
        state = singleton_state()
        args = [(p["overrides"], "hydra.sweep.dir", p["idx"], state) for p in todo]
        with _environ(env):  # sbatch / local subprocesses inherit the submitter's environment
            jobs = executor.map_array(runner, *zip(*args))
        host = socket.gethostname() if self._EXECUTOR == "local" else None  # local job id = a pid on this host
        for p, job in zip(todo, jobs):
            index.record(p["num"], "pending", overrides=p["overrides"], run_dir=p["run_dir"],
                         backend=self._EXECUTOR, slurm_job_id=str(job.job_id), host=host, log_out=str(job.paths.stdout),
                         log_err=str(job.paths.stderr), launch=str(sweep_dir), snapshot=snap.get("snapshot"),
                         git_sha=snap.get("sha"), error=None)
        log.info("campaign %s: submitted %d job(s): %s", index.root, len(jobs),
                 ", ".join(j.job_id for j in jobs))
        return {p["idx"]: _reported(p, jobstate.wait(index, p, job), job) for p, job in zip(todo, jobs)}

    def _summary(self, index: CampaignIndex, plan: list[dict]) -> None:
        skipped = [p for p in plan if not p["submit"]]
        if skipped:
            kinds = sorted({p["skip"] for p in skipped})
            print(f"campaign {index.root}: skipped {len(skipped)} job(s) ({', '.join(kinds)})",
                  file=sys.stderr)

def _reported(p: dict, ret: JobReturn, job: Any) -> JobReturn:
    """One line for a failed job (counted for the exit code); Hydra gets a completed return, so no traceback."""
    value = ret._return_value
    if ret.status == JobStatus.FAILED:
        error = jobstate._error_text(value) if isinstance(value, BaseException) else str(value)
        value = {"status": "busy" if isinstance(value, FolderBusyError) else "failed", "error": error}
    status = value.get("status") if isinstance(value, dict) else None
    if status in ("failed", "busy"):
        error = value.get("error") or value.get("reason")
        print(f"aad-bench: error: job {p['num']} ({' '.join(p['overrides'])}) {status}: {error} "
              f"(log: {job.paths.stdout})", file=sys.stderr)
        outcome.note_failure(str(error))
    return JobReturn(overrides=p["overrides"], status=JobStatus.COMPLETED, _return_value=value)


def _task_config(cfg: Any) -> Any:
    """The config the task will see (Hydra removes the ``hydra`` node before calling it)."""
    from omegaconf import open_dict, read_write

    with read_write(cfg), open_dict(cfg):
        del cfg["hydra"]
    return cfg


class _environ:
    """Temporarily set environment variables."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env, self.old = env, {k: os.environ.get(k) for k in env}

    def __enter__(self) -> None:
        os.environ.update(self.env)

    def __exit__(self, *exc: Any) -> None:
        for k, v in self.old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class CampaignSlurmLauncher(_CampaignLauncher, SlurmLauncher):
    """``hydra/launcher: aad_slurm``: each sweep job is one SLURM array task."""

    __module__ = PLUGIN_MODULE  # Hydra accepts a launcher only under hydra_plugins (where the plugin re-exports it)


class CampaignLocalLauncher(_CampaignLauncher, LocalLauncher):
    """``hydra/launcher: aad_local``: each sweep job is a local submitit process (no SLURM)."""

    __module__ = PLUGIN_MODULE
