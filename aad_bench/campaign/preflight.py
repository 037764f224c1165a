"""Checks before anything is submitted: SLURM reachable, partition known, resources possible on a node."""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any


class CampaignError(RuntimeError):
    """Bad campaign input; the message is one line meant for the researcher."""


def _sinfo(*args: str, timeout: float = 20) -> str:
    if shutil.which("sinfo") is None:
        raise CampaignError("SLURM not reachable: `sinfo` is not installed here (use slurm=local to run "
                            "without SLURM, or bring up a local cluster with slurm/local_up.sh)")
    try:
        out = subprocess.run(["sinfo", *args], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise CampaignError(f"SLURM not reachable: `sinfo` did not answer in {timeout:.0f} s") from None
    if out.returncode != 0:
        msg = (out.stderr.strip().splitlines() or ["no output"])[-1]
        raise CampaignError(f"SLURM not reachable: sinfo failed: {msg}")
    return out.stdout


def slurm_reachable() -> bool:
    """True when ``sinfo`` answers (used by tests and status)."""
    try:
        _sinfo("-h", "-o", "%P", timeout=10)
    except CampaignError:
        return False
    return True


def _gpus(gres: str) -> int:
    """GPU count of a node's ``%G`` gres string, e.g. ``gpu:a100:8(S:0-1),shard:8`` → 8."""
    total = 0
    for item in gres.split(","):
        m = re.match(r"gpu(?::[^:(]+)?:(\d+)", item.strip())
        if m:
            total += int(m.group(1))
    return total


def partition_nodes(partition: str) -> list[dict[str, Any]]:
    """The nodes of ``partition``: cpus, memory (MB) and GPUs of each (raises if it does not exist)."""
    names = [p.rstrip("*") for p in _sinfo("-h", "-o", "%P").split()]
    if partition not in names:
        raise CampaignError(f"partition {partition!r} does not exist on this cluster (partitions: "
                            f"{', '.join(sorted(set(names))) or 'none'})")
    nodes = []
    for line in _sinfo("-h", "-N", "-p", partition, "-o", "%N|%c|%m|%G").splitlines():
        name, cpus, mem, gres = (line.split("|") + ["", "", "", ""])[:4]
        mem_mb = int(re.sub(r"\D", "", mem) or 0)
        nodes.append({"name": name, "cpus": int(re.sub(r"\D", "", cpus) or 0), "mem_mb": mem_mb,
                      "gpus": _gpus(gres)})
    return nodes


def check_slurm_params(params: dict[str, Any]) -> list[dict[str, Any]]:
    """Validate the launcher parameters against the cluster; raises :class:`CampaignError` (one line)."""
    partition = params.get("partition")
    if not partition:
        raise CampaignError("no SLURM partition set: add hydra.launcher.partition=<name> "
                            "(see slurm/cluster.yaml)")
    nodes = partition_nodes(str(partition))
    if not nodes:
        raise CampaignError(f"partition {partition!r} has no nodes")
    tasks = int(params.get("tasks_per_node") or 1)
    gpus = int(params.get("gpus_per_node") or 0) or tasks * int(params.get("gpus_per_task") or 0)
    cpus = tasks * int(params.get("cpus_per_task") or 1)
    mem_mb = int(params.get("mem_gb") or 0) * 1024
    best = {k: max(n[k] for n in nodes) for k in ("gpus", "cpus", "mem_mb")}
    if gpus > best["gpus"]:
        raise CampaignError(f"impossible resources: {gpus} GPU(s) per node requested, but nodes of partition "
                            f"{partition!r} have at most {best['gpus']}")
    if cpus > best["cpus"]:
        raise CampaignError(f"impossible resources: {cpus} CPU(s) per node requested (tasks_per_node "
                            f"x cpus_per_task), but nodes of partition {partition!r} have at most "
                            f"{best['cpus']}")
    if mem_mb > best["mem_mb"] > 0:
        raise CampaignError(f"impossible resources: mem_gb={params.get('mem_gb')} but nodes of partition "
                            f"{partition!r} have at most {best['mem_mb'] // 1024} GB")
    return nodes
