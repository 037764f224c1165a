"""Run under torchrun by tests/test_engine_*.py: toy training under an engine vs the single-process reference.

``python -m torch.distributed.run --standalone --nproc_per_node=2 tests/engine_worker.py SCENARIO OUT [k=v ...]``

Scenarios (every rank also trains the single-process reference on the whole global batch, locally):

* ``train``: k steps of a GAN-shaped step (generator rollout through ``forward_cached`` with gradients; D update
  with real/fake logits; generator loss through the frozen D plus a frozen-teacher regression term; EMA); then
  a sharded checkpoint, one more step, a reload of the checkpoint and the same step again.
* ``cp``: discriminator / teacher forwards under Ulysses context parallelism; logits, velocities and gradients.
* ``bad``: ``setup`` (and a CP prepare) with the given settings; each rank writes its error line.

Rank 0 writes ``OUT/result.json``; every rank ends with barrier + destroy_process_group.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from aad_bench.engine import setup
from aad_bench.engine.base import Trained
from aad_bench.engine.checkpoint import load_sharded, save_sharded
from aad_bench.engine.ema import ShardedEMA
from aad_bench.engine.engines import SingleEngine
from aad_bench.engine.runtime import Runtime
from aad_bench.engine.settings import EngineError, TrainerSettings
from aad_bench.models.discriminator import Discriminator, logistic_d_loss, nonsaturating_g_loss
from aad_bench.models.dit import DiTConfig, VideoDiT
from aad_bench.sampling.samplers import causal_rollout

BATCH, FRAMES, LR = 4, 9, 1e-3
MLP = "linear"  # the DiT's MLP (the worker's ``mlp=`` argument): conv gathers a context-parallel split around it


def model(seed: int, heads: int = 2) -> VideoDiT:
    """A tiny DiT with every weight random (zero-initialised heads would hide most of the gradient)."""
    torch.manual_seed(seed)
    m = VideoDiT(DiTConfig(height=16, width=16, patch=4, dim=16 * heads, depth=2, heads=heads, chunk=4, mlp=MLP))
    for p in m.parameters():
        torch.nn.init.normal_(p, std=0.1)
    return m


def data(step: int) -> dict[str, torch.Tensor]:
    """The global batch of one step (identical on every rank)."""
    g = torch.Generator().manual_seed(100 + step)
    return {"real": torch.randn(BATCH, FRAMES, 3, 16, 16, generator=g),
            "noise": torch.randn(BATCH, FRAMES - 1, 3, 16, 16, generator=g),
            "t": torch.rand(BATCH, generator=g)[:, None].expand(BATCH, FRAMES).contiguous()}


def adamw(params) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=LR, weight_decay=0.0)


def build(engine, cp: bool = False) -> dict[str, object]:
    """Generator, discriminator (two lr groups), frozen teacher, generator EMA; D and teacher context-parallel."""
    gen = engine.prepare(model(0), lambda m: adamw(m.parameters()), name="gen", batch=BATCH, grad_clip=1.0)
    disc = engine.prepare(Discriminator(model(1), "bidirectional", "video", [0, 1]),
                          lambda m: adamw([{"params": m.backbone_parameters()}, {"params": m.head_parameters(),
                                                                                  "lr": 2 * LR}]),
                          name="disc", batch=BATCH, grad_clip=1.0, context_parallel=cp)
    teacher = engine.prepare(model(2), None, name="teacher", context_parallel=cp)
    return {"gen": gen, "disc": disc, "teacher": teacher, "ema": ShardedEMA(gen, 0.9)}


def micro_batches(m: Trained, batch: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
    """The accumulation parts of the global batch (each is split over the data-parallel ranks inside the calls)."""
    return [{k: v[part] for k, v in batch.items()} for part in m.parts(BATCH)]


def train_step(rt: Runtime, models: dict, step: int) -> dict[str, float]:
    gen, disc, teacher = models["gen"], models["disc"], models["teacher"]
    fakes = []
    for mb in micro_batches(disc, data(step)):
        cond = mb["real"][:, 0]
        fake = torch.cat([cond[:, None], causal_rollout(gen, cond, 2, noise=mb["noise"], grad_chunks={0, 1})], 1)
        fakes.append(fake)
        loss_d = logistic_d_loss(disc(mb["real"], mb["t"]), disc(fake.detach(), mb["t"]))
        disc.backward(loss_d)
    nd = disc.step()
    for mb, fake in zip(micro_batches(gen, data(step)), fakes):
        with disc.frozen():
            loss_g = nonsaturating_g_loss(disc(fake, mb["t"]))
        with torch.no_grad():
            target = teacher(fake.detach(), mb["t"])
        loss_g = loss_g + F.mse_loss(gen(fake.detach() * 0.5 + fake * 0.5, mb["t"], causal=True), target)
        gen.backward(loss_g)
    ng = gen.step()
    models["ema"].update()
    return {"loss_d": float(loss_d), "loss_g": float(loss_g), "norm_d": nd, "norm_g": ng}


def state(models: dict) -> dict[str, dict[str, torch.Tensor]]:
    out = {k: models[k].full_state_dict() for k in ("gen", "disc")}
    out["ema"] = models["ema"].full_state_dict()
    return out


def update_err(a: dict, b: dict, start: dict) -> float:
    """``|| (a - start) - (b - start) || / || b - start ||`` over all weights: how far the updates disagree."""
    num = sum(((a[k][n].float() - b[k][n].float()) ** 2).sum().item() for k in b for n in b[k])
    den = sum(((b[k][n].float() - start[k][n].float()) ** 2).sum().item() for k in b for n in b[k])
    return (num / max(den, 1e-30)) ** 0.5


def max_err(a: dict, b: dict) -> float:
    return max(max((a[k][n].float() - b[k][n].float()).abs().max().item() for n in b[k]) for k in b)


def scenario_train(engine, out: Path, steps: int) -> dict:
    rt = engine.rt
    cp = rt.cp > 1
    models = build(engine, cp)
    start = state(models)
    norms = [train_step(rt, models, s) for s in range(steps)]
    after_k = state(models)
    ckpt = save_sharded(out / "ckpt", f"step{steps}", rt, {"gen": models["gen"], "disc": models["disc"]},
                        {"gen_ema": models["ema"]}, extra={"step": steps})
    train_step(rt, models, steps)
    continued = state(models)
    fresh = build(engine, cp)
    extra = load_sharded(ckpt, rt, {"gen": fresh["gen"], "disc": fresh["disc"]}, {"gen_ema": fresh["ema"]})
    resumed_k = state(fresh)
    train_step(rt, fresh, extra["step"])
    resumed = state(fresh)
    ref_rt = Runtime(TrainerSettings(precision=rt.settings.precision), torch.device("cpu"))
    ref = build(SingleEngine(ref_rt))
    ref_norms = [train_step(ref_rt, ref, s) for s in range(steps)]
    ref_k = state(ref)
    train_step(ref_rt, ref, steps)
    return {"err_vs_single": max_err(after_k, ref_k), "update_err_vs_single": update_err(after_k, ref_k, start),
            "err_continued_vs_single": max_err(continued, state(ref)),
            "norm_rel_err": max(abs(a[k] / b[k] - 1) for a, b in zip(norms, ref_norms) for k in ("norm_d", "norm_g")),
            "err_reload": max_err(resumed_k, after_k), "err_resumed_vs_continued": max_err(resumed, continued),
            "accum": models["gen"].accum, "micro": models["gen"].micro, "ckpt": str(ckpt),
            "layouts": {k: models[k].layout for k in ("gen", "disc", "teacher")}}


def cp_forward(disc, teacher, batch) -> dict[str, torch.Tensor]:
    logits = disc(batch["real"], batch["t"])
    logits.pow(2).mean().backward()
    with torch.no_grad():
        vel = teacher(batch["real"], batch["t"])
        vel_causal = teacher(batch["real"], batch["t"], causal=True)
    return {"logits": logits.detach(), "vel": vel, "vel_causal": vel_causal}


def scenario_cp(engine) -> dict:
    """Both discriminator visibilities (bidirectional mask-free and block-causal) and the teacher, CP vs one process."""
    from aad_bench.engine.engines import all_reduce_grads

    rt, out = engine.rt, {}
    teacher = engine.prepare(model(2), None, name="teacher", context_parallel=True)
    for visibility in ("bidirectional", "causal"):
        mk = lambda v=visibility: Discriminator(model(1), v, "video", [0, 1])  # noqa: E731
        disc = engine.prepare(mk(), lambda m: adamw(m.parameters()), name="disc", batch=BATCH,
                              context_parallel=True)
        batch = data(0)
        seen = []  # tokens per rank in the blocks: L / cp when the split is active
        disc.module.backbone.blocks[0].register_forward_hook(lambda m, a, o, seen=seen: seen.append(o.shape[1]))
        got = cp_forward(disc, teacher, batch)
        all_reduce_grads(list(disc.module.parameters()), rt.device)
        ref = mk()
        want = cp_forward(ref, model(2).requires_grad_(False), data(0))
        pairs = [(p, q) for p, q in zip(disc.module.parameters(), ref.parameters()) if q.grad is not None]
        out[visibility] = {**{f"err_{k}": (got[k] - want[k]).abs().max().item() for k in got},
                           "err_grad": max((p.grad - q.grad).abs().max().item() for p, q in pairs),
                           "grad_scale": max(q.grad.abs().max().item() for _, q in pairs),
                           "block_tokens": seen[0], "clip_tokens": FRAMES * 16}
    return out


def scenario_bad(settings: dict) -> dict:
    try:
        engine = setup(settings)
    except EngineError as e:
        return {"error": str(e), "where": "setup"}
    try:
        engine.prepare(Discriminator(model(1, heads=3), "bidirectional", "video", [0]), None, name="disc",
                       context_parallel=True)
        engine.prepare(model(0), lambda m: adamw(m.parameters()), name="gen", batch=6, batch_setting="method.x.batch")
    except EngineError as e:
        return {"error": str(e), "where": "prepare"}
    finally:
        engine.rt.close()
    return {"error": None}


def parse(args: list[str]) -> dict:
    """``key=value`` arguments; values are JSON where they parse as JSON, else strings."""
    out = {}
    for a in args:
        k, v = a.split("=", 1)
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def main() -> None:
    scenario, out, opts = sys.argv[1], Path(sys.argv[2]), parse(sys.argv[3:])
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    if scenario == "bad":  # every rank reports: each must stop by itself, with the same line
        res = scenario_bad(opts)
        (out / f"bad-rank{os.environ.get('RANK', '0')}.json").write_text(json.dumps(res))
        raise SystemExit(2 if res["error"] else 0)
    steps = opts.pop("steps", 2)
    global MLP
    MLP = opts.pop("mlp", MLP)
    engine = setup(opts)
    try:
        res = scenario_train(engine, out, steps) if scenario == "train" else scenario_cp(engine)
        if engine.rt.is_main:
            (out / "result.json").write_text(json.dumps(res))
            print("RESULT " + json.dumps(res), flush=True)
    finally:
        engine.rt.close()


if __name__ == "__main__":
    main()
