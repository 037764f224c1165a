"""The config schema: types and ranges of every setting, checked on the composed config before any work.

The app checks it before the task runs (``aad-bench ...``), the campaign launchers for every job before
submitting, so ``method.gan.steps=-3``, ``method.gan.steps=abc``, ``distill.ckpt_every=0`` or
``paths.out=/dev/null/x`` fail with one line naming the setting instead of after a stage has trained.

The schema is a validator over the composed config rather than structured configs: config groups added by other
parts (new models, data sources, method keys) compose without registering a dataclass; a key the schema names is
checked wherever it is present, and keys it does not name are left to the code that reads them.
Structural checks that need several settings (stage order, discriminator depths vs the backbone, chunking vs
frame count) stay with the code that owns them and also run before any work (``MethodSpec.validate``,
``DiTConfig.check_frames``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

Check = Callable[[Any], "str | None"]  # value -> problem (None = fine)


class ConfigError(ValueError):
    """A setting with a wrong type or out of range; the message is one line naming it."""


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return (isinstance(v, int | float) and not isinstance(v, bool)) and math.isfinite(v)


def integer(lo: int | None = None, hi: int | None = None, null: bool = False) -> Check:
    """An integer in ``[lo, hi]`` (None allowed when ``null``)."""
    want = "an integer" + (f" >= {lo}" if lo is not None and hi is None else "") + \
        (f" in [{lo}, {hi}]" if lo is not None and hi is not None else "") + (" or null" if null else "")

    def check(v: Any) -> str | None:
        if v is None and null:
            return None
        ok = _is_int(v) and (lo is None or v >= lo) and (hi is None or v <= hi)
        return None if ok else f"must be {want}"

    return check


def number(lo: float | None = None, hi: float | None = None, gt: float | None = None, lt: float | None = None,
           null: bool = False) -> Check:
    """A finite number with inclusive (``lo``/``hi``) or exclusive (``gt``/``lt``) bounds."""
    parts = [f">= {lo}" if lo is not None else "", f"> {gt}" if gt is not None else "",
             f"<= {hi}" if hi is not None else "", f"< {lt}" if lt is not None else ""]
    want = "a number" + (" " + " and ".join(p for p in parts if p) if any(parts) else "") + (" or null" if null else "")

    def check(v: Any) -> str | None:
        if v is None and null:
            return None
        ok = _is_num(v) and (lo is None or v >= lo) and (gt is None or v > gt) and (hi is None or v <= hi) \
            and (lt is None or v < lt)
        return None if ok else f"must be {want}"

    return check


def boolean(v: Any) -> str | None:
    """``true`` or ``false``."""
    return None if isinstance(v, bool) else "must be true or false"


def choice(*options: str) -> Check:
    """One of ``options``."""
    def check(v: Any) -> str | None:
        return None if v in options else f"must be one of {' | '.join(options)}"

    return check


def folder(null: bool = False) -> Check:
    """A folder that exists or can be created (its first existing ancestor is a writable folder)."""
    def check(v: Any) -> str | None:
        if v is None and null:
            return None
        if not isinstance(v, str) or not v.strip():
            return "must be a folder path"
        p = Path(v).expanduser().absolute()
        for q in (p, *p.parents):
            if not q.exists():
                continue
            if not q.is_dir():
                return "exists and is not a folder" if q == p else f"cannot be created: {q} is not a folder"
            if not os.access(q, os.W_OK | os.X_OK):
                return f"{'is' if q == p else 'cannot be created: ' + str(q) + ' is'} not writable"
            return None
        return None

    return check


def betas(v: Any) -> str | None:
    """Adam's ``[beta1, beta2]``, each in [0, 1)."""
    ok = isinstance(v, list) and len(v) == 2 and all(_is_num(b) and 0 <= b < 1 for b in v)
    return None if ok else "must be [beta1, beta2] with each in [0, 1)"


def grad_chunks(v: Any) -> str | None:
    """``all`` | ``last`` | k >= 1 (the last k chunks carry gradient)."""
    return None if v in ("all", "last") or (_is_int(v) and v >= 1) else "must be all, last or an integer >= 1"


def flow_times(v: Any) -> str | None:
    """The student's per-chunk flow times: starts at 1.0, strictly decreasing, all in (0, 1]."""
    ok = isinstance(v, list) and v and all(_is_num(t) and 0 < t <= 1 for t in v) and v[0] == 1.0 \
        and all(a > b for a, b in zip(v, v[1:]))
    return None if ok else "must be a decreasing list of flow times in (0, 1] starting at 1.0, e.g. [1.0]"


def int_list(v: Any) -> str | None:
    """A non-empty list of integers >= 0."""
    ok = isinstance(v, list) and v and all(_is_int(d) and d >= 0 for d in v)
    return None if ok else "must be a non-empty list of integers >= 0"


POS, NONNEG, LR, UNIT = integer(1), integer(0), number(gt=0), number(0, 1)
_TRAIN = {"steps": POS, "batch": POS, "warmup": NONNEG, "grad_clip": number(gt=0)}

SCHEMA: dict[str, Check] = {
    "seed": NONNEG, "threads": integer(1, null=True), "progress": boolean,
    "paths.out": folder(), "paths.cache": folder(), "paths.runs": folder(), "run_dir": folder(null=True),
    "sample.n_videos": POS, "sample.n_long": POS, "sample.long_factor": POS, "sample.seed": NONNEG,
    "sample.draws": POS,
    "distill.log_every": POS, "distill.ckpt_every": POS, "distill.keep_checkpoints": POS,
    "distill.explode_grad": number(gt=0, null=True), "distill.share_stages": boolean,
    **{f"teacher.{k}": c for k, c in _TRAIN.items()},
    "teacher.seed": NONNEG, "teacher.lr": LR, "teacher.weight_decay": number(0), "teacher.ema": UNIT,
    "teacher.p_uncond": UNIT, "teacher.time_dist": choice("uniform", "logit_normal"),
    "teacher.explode_grad": number(gt=0, null=True), "teacher.log_every": POS, "teacher.ckpt_every": POS,
    "teacher.sample.steps": POS, "teacher.sample.cfg": number(0), "teacher.sample.shift": number(gt=0),
    "method.student.steps": flow_times,
    **{f"method.ode.{k}": c for k, c in _TRAIN.items()},
    "method.ode.pairs": POS, "method.ode.teacher_steps": POS, "method.ode.lr": LR,
    "method.ode.weight_decay": number(0), "method.ode.p_clean": number(0, lt=1),
    **{f"method.dmd.{k}": c for k, c in _TRAIN.items()},
    "method.dmd.ratio": POS, "method.dmd.lr_gen": LR, "method.dmd.lr_critic": LR, "method.dmd.betas": betas,
    "method.dmd.weight_decay": number(0), "method.dmd.cfg": number(0), "method.dmd.t_min": UNIT,
    "method.dmd.t_max": UNIT, "method.dmd.grad_chunks": grad_chunks,
    "method.dmd.early_stop.criterion": choice("budget", "motion"), "method.dmd.early_stop.every": POS,
    "method.dmd.early_stop.reference": choice("start", "data"), "method.dmd.early_stop.threshold": number(0),
    **{f"method.gan.{k}": c for k, c in _TRAIN.items()},
    "method.gan.lr_gen": LR, "method.gan.lr_d_backbone": LR, "method.gan.lr_d_head": LR, "method.gan.betas": betas,
    "method.gan.ema": UNIT, "method.gan.tau_min": UNIT, "method.gan.tau_max": UNIT,
    "method.gan.grad_chunks": grad_chunks, "method.gan.dmd_weight": number(0), "method.gan.reg.lambda_": number(0),
    "method.gan.reg.sigma": number(gt=0), "method.gan.disc.queries": POS, "method.gan.disc.depths": int_list,
    "method.gan.diverge.pinned_acc": UNIT, "method.gan.diverge.pinned_steps": POS,
    **{f"model.{k}": POS for k in ("channels", "patch", "dim", "depth", "heads", "chunk", "window_frames")},
    "model.sink_chunks": NONNEG, "model.mlp_ratio": number(gt=0),
    **{f"world.{k}": POS for k in ("height", "width", "n_train", "n_eval", "n_long")},
    "world.frames": integer(2), "world.long_frames": integer(2), "world.fps": number(gt=0),
    "world.static_share": UNIT, "world.slow_share": UNIT,
}
# (low, high): low must stay below high
ORDERED = [("method.dmd.t_min", "method.dmd.t_max"), ("method.gan.tau_min", "method.gan.tau_max")]
_ABSENT = object()


def _show(v: Any) -> str:
    return repr(v) if isinstance(v, str) else str(v).replace(" ", "").replace("True", "true").replace(
        "False", "false").replace("None", "null")


def _value(cfg: DictConfig, key: str) -> Any:
    """The resolved value at ``key`` (``_ABSENT`` when the config has no such key)."""
    try:
        v = OmegaConf.select(cfg, key, default=_ABSENT, throw_on_missing=True)
    except Exception as e:  # missing mandatory value, broken interpolation
        raise ConfigError(f"{key}: {str(e).splitlines()[0]}") from None
    if isinstance(v, DictConfig | ListConfig):
        v = OmegaConf.to_container(v, resolve=True)
    return v


def problems(cfg: DictConfig) -> list[str]:
    """Every schema violation of ``cfg``, one line each (``key=value: must be ...``)."""
    out = []
    for key, check in SCHEMA.items():
        try:
            v = _value(cfg, key)
        except ConfigError as e:
            out.append(str(e))
            continue
        if v is not _ABSENT and (msg := check(v)):
            out.append(f"{key}={_show(v)}: {msg}")
    for lo, hi in ORDERED:
        a, b = OmegaConf.select(cfg, lo, default=None), OmegaConf.select(cfg, hi, default=None)
        if _is_num(a) and _is_num(b) and a > b:
            out.append(f"{lo}={a} must not exceed {hi}={b}")
    return out


def check_config(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` with the first violation (and how many more there are)."""
    found = problems(cfg)
    if found:
        more = f" (and {len(found) - 1} more problem(s) in the config)" if len(found) > 1 else ""
        raise ConfigError(found[0] + more)
