"""torch.distributed environment for multi-task (multi-GPU) SLURM jobs, from submitit."""

from __future__ import annotations

import os
from typing import Any


def export_distributed_env() -> dict[str, Any]:
    """Export MASTER_ADDR/PORT, RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE for ``env://`` init.

    Uses ``submitit.helpers.TorchDistributedEnvironment`` (rank/world size from SLURM, master = first host,
    port derived from the job id so every task agrees). On GPU nodes each task sees only its own GPU
    (CUDA_VISIBLE_DEVICES = its local rank), which ``aad_bench.engine`` then uses as ``cuda:0``; CPU nodes are left
    alone. Called by every task of a multi-task campaign job, and by ``aad_bench.engine`` when a process finds
    SLURM task variables but no torchrun ones (``srun python -m aad_bench.cli ...``).
    """
    import submitit
    import torch

    env = submitit.helpers.TorchDistributedEnvironment().export(
        set_cuda_visible_devices=torch.cuda.is_available())
    return {"rank": env.rank, "world_size": env.world_size, "local_rank": env.local_rank,
            "master_addr": env.master_addr, "master_port": env.master_port}


def allreduce_check(backend: str = "gloo") -> dict[str, Any]:
    """Join the process group and all-reduce ``rank + 1``; returns this task's view (used by tests).

    With world size ``n`` every rank must see ``n * (n + 1) / 2``.
    """
    import torch
    import torch.distributed as dist

    info = export_distributed_env()
    dist.init_process_group(backend=backend, init_method="env://")
    try:
        t = torch.tensor([float(dist.get_rank() + 1)])
        dist.all_reduce(t)
        info.update(sum=float(t.item()), dist_rank=dist.get_rank(), dist_world=dist.get_world_size(),
                    env_rank=int(os.environ["RANK"]))
    finally:
        dist.destroy_process_group()
    return info
