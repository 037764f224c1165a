"""Public checkpoints beside our runs: ``aad-bench sample --public NAME --like RUN`` (or ``task=public``).

A public model is one YAML in ``conf/public/`` (paths and sampler settings; its file stem is its name). Its
settings are mapped onto the run config as overrides, so ``config.yaml`` records exactly what was sampled:

==============================  ==================================================
``public.checkpoint``           ``model.checkpoint`` (path, format, ema, lora)
``public.sampler.chunk``        ``model.chunk`` (``sink_chunks``, ``window_frames`` alike)
``public.base``                 ``model.vae.path`` and ``model.encoders.text``
``public.sampler.text``         ``sample.text`` (:mod:`aad_bench.sampling.text`)
``public.model``                the ``model`` group (the architecture), ``codec=wan_vae``
==============================  ==================================================

A mapping is skipped when the command line sets that key itself (``model.vae.random=tiny``). The model is
sampled with the causal rollout (the conditioning latent is the first chunk, as in AAD-1; T2V checkpoints
get the image that way) at ``public.sampler.steps`` flow times per chunk, on the conditioning of
:mod:`aad_bench.sampling.conditions`, into a run folder that ``aad-bench eval`` / ``report`` treat like ours.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from aad_bench.config import CONF_DIR, compose
from aad_bench.registry import Registry
from aad_bench.utils.provenance import config_hash

PUBLIC_DIR = Path(CONF_DIR) / "public"
PUBLIC: Registry[Path] = Registry("public model")
for _p in sorted(PUBLIC_DIR.glob("*.yaml")):
    PUBLIC.register(_p.stem, _p)

# (run-config key, public setting) — the mapping above
MAPPING = (("model.checkpoint", "public.checkpoint"), ("model.chunk", "public.sampler.chunk"),
           ("model.sink_chunks", "public.sampler.sink_chunks"),
           ("model.window_frames", "public.sampler.window_frames"),
           ("model.vae.path", "public.base"), ("model.encoders.text", "public.base"),
           ("sample.text", "public.sampler.text"))
GROUP_KEYS = ("model", "world", "teacher", "trainer", "data", "size", "slurm", "baseline")


def _keys(overrides: list[str]) -> set[str]:
    return {o.split("=", 1)[0].lstrip("+~") for o in overrides if "=" in o}


def _conflicts(key: str, user: set[str]) -> bool:
    """The user sets ``key``, a part of it or a node above it (group choices like ``model=`` do not count)."""
    return any(u == key or u.startswith(key + ".") or key.startswith(u + ".") for u in user if u not in GROUP_KEYS)


def compose_public(name: str, overrides: list[str]) -> DictConfig:
    """The run config for public model ``name`` (did-you-mean on a typo) with the user's ``overrides``."""
    raw = OmegaConf.load(PUBLIC.get(name))
    user = _keys(overrides)
    chosen = next((o.split("=", 1)[1] for o in overrides if o.split("=", 1)[0].lstrip("+") == "model"), None)
    base = [f"model={raw.model}"] if chosen is None else [f"public.model={chosen}"]  # the record says what ran
    base += [] if "codec" in user else ["codec=wan_vae"]
    base += [] if "task" in user else ["task=public"]
    maps = [f"++{k}=${{{v}}}" for k, v in MAPPING if not _conflicts(k, user)]
    return compose(["~method", *base, f"+public={name}", *maps, *overrides])


def _env_var(name: str, key: str) -> str | None:
    """The environment variable a public YAML reads ``key`` from (``${oc.env:VAR,...}``), if any."""
    node: Any = OmegaConf.to_container(OmegaConf.load(PUBLIC.get(name)), resolve=False)
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    m = re.search(r"oc\.env:([A-Za-z_][A-Za-z0-9_]*)", str(node or ""))
    return m.group(1) if m else None


def _need_path(cfg: DictConfig, name: str, key: str, what: str) -> None:
    value = OmegaConf.select(cfg, key)
    env = _env_var(name, key.removeprefix("public."))
    how = f"set {key}=<{what}>" + (f" or the environment variable {env}" if env else "")
    if not value:
        raise ValueError(f"{key} is not set: {how} (weights are never downloaded)")
    if not Path(str(value)).expanduser().exists():
        raise ValueError(f"{key}={value} does not exist ({how})")


def check_public(cfg: DictConfig, overrides: list[str] = ()) -> None:
    """Everything a public sampling run needs, before any folder or weight is touched (one line each)."""
    p, name = cfg.public, str(cfg.public.name)
    if cfg.model.get("arch") != "wan":
        raise ValueError(f"public models are Wan checkpoints: model.arch={cfg.model.get('arch', 'dit')!r} "
                         f"(choose model=wan_1_3b, wan_14b or wan_tiny)")
    if bool(p.get("like")) == bool(p.get("images")):
        raise ValueError("give exactly one of --like RUN (public.like) or --images DIR (public.images)")
    _need_path(cfg, name, "public.checkpoint.path", "generator checkpoint")
    # a LoRA the YAML declares (LongLive) is part of the model: unset is an error unless set null on purpose
    lora_declared = "lora" in p.checkpoint and _env_var(name, "checkpoint.lora") is not None
    if p.checkpoint.get("lora") or (lora_declared and "public.checkpoint.lora" not in _keys(overrides)):
        _need_path(cfg, name, "public.checkpoint.lora", "LoRA file")
    vae = cfg.model.get("vae") or {}
    if not vae.get("random"):
        if not vae.get("path"):
            env = _env_var(name, "base")
            raise ValueError("model.vae.path is not set: set public.base=<diffusers Wan folder with vae/>"
                             + (f" or the environment variable {env}" if env else "") + " (or model.vae.path)")
        if not Path(str(vae.path)).expanduser().exists():
            raise ValueError(f"model.vae.path={vae.path} does not exist (from public.base, or set model.vae.path)")
    s = p.sampler
    if float(s.cfg) != 1.0:
        raise ValueError(f"public.sampler.cfg={s.cfg}: the causal sampler has no classifier-free guidance; "
                         "the public distilled generators sample with cfg 1.0")
    steps = [float(x) for x in s.steps]
    if not steps or steps[0] != 1.0 or any(b >= a for a, b in zip(steps, steps[1:])) or steps[-1] <= 0:
        raise ValueError(f"public.sampler.steps={steps}: flow times starting at 1.0, strictly decreasing, > 0")
    if int(s.batch) < 1:
        raise ValueError(f"public.sampler.batch={s.batch}: must be >= 1")


def conditioning(cfg: DictConfig):
    """The sets to generate (:mod:`aad_bench.sampling.conditions`) and the seed the report pairs by."""
    from aad_bench.sampling.conditions import from_images, from_run, like_seed

    p = cfg.public
    if p.get("like"):
        return from_run(p.like, list(p.sets) if p.get("sets") else None), like_seed(p.like)
    return from_images(p.images, int(p.sampler.frames), float(p.sampler.fps), int(cfg.sample.seed)), int(cfg.seed)


def public_run_dir(cfg: DictConfig) -> Path:
    """``run_dir`` when given; else ``public-<name>-<hash>`` beside the ``like`` run (or under ``paths.runs``)."""
    if cfg.get("run_dir"):
        return Path(cfg.run_dir)
    semantic = OmegaConf.to_container(cfg, resolve=True)
    for k in ("paths", "run_dir", "progress", "threads", "campaign", "slurm", "hydra"):
        semantic.pop(k, None)
    name = f"public-{cfg.public.name}-{config_hash(semantic)}"
    like = cfg.public.get("like")
    return (Path(like).expanduser().resolve().parent if like else Path(cfg.paths.runs)) / name


def method_info(cfg: DictConfig) -> dict[str, Any]:
    """``results.json``'s ``method_info`` of a public model (reports read nothing else about it)."""
    p = cfg.public
    return {"name": str(p.name), "display": str(p.get("display") or p.name), "order": p.get("order"),
            "summary": p.get("summary"), "stages": [], "disc": None, "nfe_per_chunk": len(p.sampler.steps),
            "code": None, "source": f"public checkpoint: {p.checkpoint.path}"}


def run_public(cfg: DictConfig, overrides: list[str] = ()) -> dict[str, Any]:
    """Sample the public model of ``cfg.public`` into its run folder; returns ``results.json``'s content.

    ``overrides`` are the user's command-line settings (recorded in ``results.json``).
    """
    from aad_bench.engine.runtime import resolve_device
    from aad_bench.engine.settings import TrainerSettings
    from aad_bench.models.backbones import build_backbone
    from aad_bench.runfolder import RunFolder
    from aad_bench.sampling.public_sets import sample_set
    from aad_bench.sampling.text import check_text

    check_public(cfg, list(overrides))
    sets, seed = conditioning(cfg)
    check_text(cfg, any(it.caption for s in sets for it in s.items))
    device = resolve_device(TrainerSettings.from_cfg(cfg.get("trainer")))  # trainer.device, as `sample` uses
    with open_dict(cfg):  # the VAE and the text encoder run where the model runs unless set otherwise
        if not cfg.model.vae.get("device"):
            cfg.model.vae.device = str(device)
        if not cfg.model.encoders.get("device"):
            cfg.model.encoders.device = str(device)
    run = RunFolder(public_run_dir(cfg))
    if run.is_finished():
        print(f"already finished: {run.path} (not overwritten)")
        return run.results()
    info = {"task": "public", "method": str(cfg.public.name), "method_info": method_info(cfg), "seed": seed,
            "run_name": run.path.name, "run_dir": str(run.path), "stages": [], "disc": None,
            "overrides": list(overrides), "campaign": cfg.get("campaign"),
            "conditioning": {"like": cfg.public.get("like"), "images": cfg.public.get("images"),
                             "sets": [s.name for s in sets]}}
    run.start(OmegaConf.to_yaml(cfg, resolve=True), info, extra_provenance={"device": str(device)})
    try:
        t0 = time.perf_counter()
        model = build_backbone(cfg.model).eval().requires_grad_(False).to(device)
        load_s = time.perf_counter() - t0
        per_set = {s.name: sample_set(cfg, model, s, run.videos(s.name), device) for s in sets}
    except Exception as e:
        run.finish("failed", f"{type(e).__name__}: {e}")
        raise
    first = per_set.get("train_len") or next(iter(per_set.values()))
    summary = {"nfe": first["nfe"], "seconds_per_video": first["seconds_per_video"], "load_seconds": load_s,
               "sets": per_set}
    res = run.finish("finished", stage="sample", summary=summary)
    print(f"{cfg.public.display}: run folder {run.path}")
    for name, s in per_set.items():
        print(f"  {name}: {s['videos']} videos of {s['frames']} frames, {s['seconds_per_video']:.2f} s/video")
    return res
