"""The process's place in a run: device, precision, process group (torchrun or SLURM tasks), DP x CP layout.

Ranks are laid out CP-major: the ``cp`` consecutive ranks ``[k*cp, (k+1)*cp)`` form one context-parallel group
(they hold the same samples and split the tokens); data-parallel rank = ``rank // cp``. Every check runs before
the process group is created, so bad input ends each rank with the same one-line error instead of a hang.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from aad_bench.engine.settings import EngineError, TrainerSettings


def resolve_device(settings: TrainerSettings, local_rank: int = 0) -> torch.device:
    """``trainer.device`` as a torch device for this process (auto = CUDA when present)."""
    has_cuda = torch.cuda.is_available()
    if settings.device == "cuda" and not has_cuda:
        raise EngineError("trainer.device=cuda but no CUDA device is visible (torch.cuda.is_available() is "
                          f"False; CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}): "
                          "use trainer.device=auto or cpu")
    if settings.device == "cpu" or not has_cuda:
        return torch.device("cpu")
    n = torch.cuda.device_count()
    if n == 1:  # the launcher bound this task to one GPU (CUDA_VISIBLE_DEVICES = its local rank)
        return torch.device("cuda", 0)
    if local_rank >= n:
        raise EngineError(f"LOCAL_RANK={local_rank} but only {n} CUDA device(s) are visible: start at most {n} "
                          "tasks per node (slurm tasks_per_node = gpus_per_node)")
    return torch.device("cuda", local_rank)


def launch_env() -> dict[str, int]:
    """Rank, world size and local rank from torchrun's variables, or SLURM's when only srun started us."""
    if "WORLD_SIZE" not in os.environ and int(os.environ.get("SLURM_NTASKS", "1") or 1) > 1 \
            and "SLURM_PROCID" in os.environ:
        from aad_bench.campaign.distributed import export_distributed_env

        export_distributed_env()  # sets RANK/WORLD_SIZE/LOCAL_RANK/MASTER_* from the SLURM job
    return {"rank": int(os.environ.get("RANK", 0)), "world": int(os.environ.get("WORLD_SIZE", 1)),
            "local_rank": int(os.environ.get("LOCAL_RANK", 0))}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def check_layout(settings: TrainerSettings, world: int, device: torch.device) -> str:
    """Validate engine x world size x cp x backend; returns the backend to use."""
    if settings.engine == "single" and world > 1:
        raise EngineError(f"trainer.engine=single but {world} processes were started (WORLD_SIZE={world}): "
                          "use trainer.engine=ddp|fsdp|deepspeed, or start one process")
    if world % settings.cp:
        raise EngineError(f"trainer.cp={settings.cp} must divide the world size {world} (data-parallel size = "
                          "world size / cp)")
    backend = settings.backend if settings.backend != "auto" else ("nccl" if device.type == "cuda" else "gloo")
    if backend == "nccl" and device.type != "cuda":
        raise EngineError("trainer.backend=nccl needs CUDA devices but this run is on the CPU "
                          f"(trainer.device={settings.device}): use trainer.backend=gloo or auto")
    if backend == "nccl" and not dist.is_nccl_available():
        raise EngineError("trainer.backend=nccl but this torch build has no NCCL: use trainer.backend=gloo")
    return backend


@dataclass
class Runtime:
    """This process's view of the run. Build it with :func:`init_runtime`; end it with :meth:`close`."""

    settings: TrainerSettings
    device: torch.device
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str | None = None
    cp_group: Any = None  # this rank's context-parallel group (None when cp == 1)
    dp_group: Any = None  # the ranks holding the other shares of this rank's batch (None = the world)
    control: Any = None  # gloo group with a long timeout: rank 0's decisions may wait on slow file work
    owns_group: bool = False  # we created the default process group (and destroy it in close())

    @property
    def cp(self) -> int:
        """Context-parallel degree (ranks that share the same samples)."""
        return self.settings.cp

    @property
    def dp_size(self) -> int:
        """Data-parallel size = world size / cp."""
        return self.world // self.cp

    @property
    def dp_rank(self) -> int:
        """This rank's data-parallel index (CP peers share it)."""
        return self.rank // self.cp

    @property
    def cp_rank(self) -> int:
        """This rank's index inside its CP group."""
        return self.rank % self.cp

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes run-folder files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """A process group is up."""
        return dist.is_available() and dist.is_initialized()

    @property
    def dtype(self) -> torch.dtype:
        """The compute dtype (parameters and optimizer state stay fp32)."""
        return torch.bfloat16 if self.settings.precision == "bf16" else torch.float32

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast on this device when ``trainer.precision=bf16``; a no-op for fp32."""
        if self.settings.precision != "bf16":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def dp_slice(self, n: int) -> slice:
        """This data-parallel rank's contiguous share of a global batch of ``n`` (CP peers get the same share)."""
        if n % self.dp_size:
            raise EngineError(f"a global batch of {n} does not split over {self.dp_size} data-parallel ranks")
        k = n // self.dp_size
        return slice(self.dp_rank * k, (self.dp_rank + 1) * k)

    def seed(self, seed: int) -> int:
        """Seed torch / python RNGs per data-parallel rank (CP peers share a seed); returns the rank's seed."""
        s = int(seed) + 1_000_003 * self.dp_rank
        torch.manual_seed(s)
        random.seed(s)
        return s

    def barrier(self) -> None:
        """Wait for every rank (no-op in one process)."""
        if self.distributed:
            dist.barrier()

    def all_reduce_mean(self, values: dict[str, float]) -> dict[str, float]:
        """Mean of each logged number over all ranks (identity in one process)."""
        if not self.distributed or self.world == 1 or not values:
            return dict(values)
        dev = self.device if self.backend == "nccl" else torch.device("cpu")
        t = torch.tensor([float(v) for v in values.values()], dtype=torch.float64, device=dev)
        dist.all_reduce(t)
        return {k: float(v) / self.world for k, v in zip(values, t.tolist())}

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (over the control group: no collective timeout while rank 0 works)."""
        if not self.distributed or self.world == 1:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0, group=self.control)
        return box[0]

    def main_decides(self, decide: Callable[[], Any]) -> Any:
        """Run ``decide`` on rank 0 only and hand its result to every rank.

        For choices that read files other jobs may be writing (caches, checkpoints): every rank must take the same
        branch, or the collectives inside model calls would no longer pair up.
        """
        value, error = None, None
        if self.is_main:
            try:
                value = decide()
            except Exception as e:  # the other ranks must not wait forever for a decision
                error = e
        value, msg = self.broadcast((value, None if error is None else f"{type(error).__name__}: {error}"))
        if error is not None:
            raise error
        if msg is not None:
            raise RuntimeError(f"rank 0 failed: {msg}")
        return value

    def describe(self) -> dict[str, Any]:
        """Provenance: world size, layout, engine, every rank's host and device, SLURM ids (collective)."""
        dev = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "cpu"
        mine = {"rank": self.rank, "host": socket.gethostname(), "device": dev, "local_rank": self.local_rank}
        ranks = [mine]
        if self.distributed:
            ranks = [None] * self.world
            dist.all_gather_object(ranks, mine)
        slurm = {k: os.environ[k] for k in ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID",
                                            "SLURM_NTASKS", "SLURM_NNODES", "SLURM_JOB_NODELIST",
                                            "SLURM_TASKS_PER_NODE") if k in os.environ}
        return {"engine": self.settings.engine, "world_size": self.world, "cp": self.cp, "dp": self.dp_size,
                "backend": self.backend, "device_type": self.device.type, "precision": self.settings.precision,
                "zero_stage": self.settings.zero_stage or None, "ranks": ranks, "slurm": slurm}

    def close(self) -> None:
        """Barrier, then destroy the process group we created (DeepSpeed's exit crash needs both)."""
        if self.owns_group and self.distributed:
            with contextlib.suppress(Exception):  # the control group: rank 0 may still be sampling videos
                dist.barrier(group=self.control)
            dist.destroy_process_group()
        self.owns_group = False


def _init_group(rt: Runtime, world: int) -> None:
    if world == 1:  # a distributed engine in one process: a private one-rank group on a free local port
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(_free_port()))
        os.environ.setdefault("RANK", "0")
        os.environ.setdefault("WORLD_SIZE", "1")
    kw: dict[str, Any] = {"timeout": timedelta(minutes=rt.settings.dist_timeout_min)}
    if rt.device.type == "cuda":
        kw["device_id"] = rt.device
    dist.init_process_group(rt.backend, init_method="env://", **kw)
    rt.owns_group = True


def init_runtime(settings: TrainerSettings) -> Runtime:
    """Check the settings against the launch, then pick the device and join the process group."""
    env = launch_env()
    device = resolve_device(settings, env["local_rank"])
    backend = check_layout(settings, env["world"], device)
    rt = Runtime(settings, device, env["rank"], env["world"], env["local_rank"],
                 backend if settings.engine != "single" else None)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = settings.tf32
        torch.backends.cudnn.allow_tf32 = settings.tf32
    if settings.engine != "single" and not rt.distributed:
        _init_group(rt, env["world"])
    if rt.distributed:
        _make_groups(rt)
    return rt


def _make_groups(rt: Runtime) -> None:
    """CP groups (consecutive ranks), DP groups (same CP rank) and the control group.

    Every rank creates every group, in the same order.
    """
    cp = rt.settings.cp
    rt.control = dist.new_group(backend="gloo", timeout=timedelta(hours=24))
    if cp == 1:
        return
    for k in range(rt.world // cp):
        ranks = list(range(k * cp, (k + 1) * cp))
        group = dist.new_group(ranks)
        if rt.rank in ranks:
            rt.cp_group = group
    for c in range(cp):
        ranks = list(range(c, rt.world, cp))
        group = dist.new_group(ranks)
        if rt.rank in ranks:
            rt.dp_group = group


@contextlib.contextmanager
def runtime(settings: TrainerSettings) -> Iterator[Runtime]:
    """A :class:`Runtime` whose process group is torn down however the ``with`` block ends."""
    rt = init_runtime(settings)
    try:
        yield rt
    finally:
        rt.close()


def is_main() -> bool:
    """Whether this process is rank 0 of its run (or the only process)."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0
