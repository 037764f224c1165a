"""Wan transformer weights from local files: diffusers folders, original Wan files, public generator checkpoints.

Formats (``model.checkpoint.format``; ``auto`` detects them):

* ``diffusers`` — a folder with ``transformer/config.json`` + ``diffusion_pytorch_model*.safetensors`` (or the
  transformer folder itself), read with ``from_pretrained(..., local_files_only=True)``.
* ``wan`` — the original Wan 2.1 release: one ``.safetensors``/``.pth`` file, or a folder of shards with an index,
  keys named as in Wan's own ``WanModel`` (``blocks.N.self_attn.q.weight``, ``head.modulation``, ...).
* ``self_forcing`` / ``causvid`` / ``longlive`` — their training checkpoints: a ``.pt`` holding ``generator``
  and/or ``generator_ema`` state dicts of a wrapper whose ``model`` is a (causal) WanModel, so keys read
  ``model.blocks.N.self_attn.q.weight``. LongLive's LoRA file (``generator_lora``, PEFT layout) is merged when
  ``lora`` is set.

Original names are mapped onto diffusers' by one table, used in both directions (:func:`to_original` exports our
weights in the original layout, e.g. for Self-Forcing's inference scripts). Any missing, unexpected or misshapen
key is an error that lists them; nothing is loaded silently half-way.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch

FORMATS = ("auto", "diffusers", "wan", "self_forcing", "causvid", "longlive")
GENERATOR_FORMATS = ("self_forcing", "causvid", "longlive")
# wrapper prefixes seen in the wild: Wan/ComfyUI single files, training wrappers, DDP, FSDP, torch.compile
_PREFIXES = ("model.diffusion_model.", "model.", "module.", "_fsdp_wrapped_module.", "_orig_mod.",
             "_checkpoint_wrapped_module.")

# (original, diffusers) name prefixes; block-level pairs apply after "blocks.N."
_TOP = [
    ("patch_embedding.", "patch_embedding."),
    ("text_embedding.0.", "condition_embedder.text_embedder.linear_1."),
    ("text_embedding.2.", "condition_embedder.text_embedder.linear_2."),
    ("time_embedding.0.", "condition_embedder.time_embedder.linear_1."),
    ("time_embedding.2.", "condition_embedder.time_embedder.linear_2."),
    ("time_projection.1.", "condition_embedder.time_proj."),
    ("img_emb.proj.0.", "condition_embedder.image_embedder.norm1."),
    ("img_emb.proj.1.", "condition_embedder.image_embedder.ff.net.0.proj."),
    ("img_emb.proj.3.", "condition_embedder.image_embedder.ff.net.2."),
    ("img_emb.proj.4.", "condition_embedder.image_embedder.norm2."),
    ("head.head.", "proj_out."),
    ("head.modulation", "scale_shift_table"),
]
_ATTN = [("q.", "to_q."), ("k.", "to_k."), ("v.", "to_v."), ("o.", "to_out.0."), ("norm_q.", "norm_q."),
         ("norm_k.", "norm_k."), ("k_img.", "add_k_proj."), ("v_img.", "add_v_proj."), ("norm_k_img.", "norm_added_k.")]
_BLOCK = ([(f"self_attn.{a}", f"attn1.{b}") for a, b in _ATTN[:6]]
          + [(f"cross_attn.{a}", f"attn2.{b}") for a, b in _ATTN]
          + [("norm3.", "norm2."),  # Wan's cross-attention norm is norm3; diffusers calls it norm2
             ("ffn.0.", "ffn.net.0.proj."), ("ffn.2.", "ffn.net.2."), ("modulation", "scale_shift_table")])
_BLOCK_KEY = re.compile(r"^blocks\.(\d+)\.(.*)$")


class CheckpointError(ValueError):
    """A checkpoint that does not fit the model (the message lists the keys) or cannot be read."""


def _rename(key: str, src: int) -> str:
    """Map one key between layouts (``src`` 0 = original → diffusers, 1 = diffusers → original)."""
    dst = 1 - src
    m = _BLOCK_KEY.match(key)
    table, head, rest = (_BLOCK, f"blocks.{m.group(1)}.", m.group(2)) if m else (_TOP, "", key)
    for pair in table:
        if rest.startswith(pair[src]):
            return head + pair[dst] + rest[len(pair[src]):]
    return key


def strip_prefixes(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop wrapper prefixes (``model.``, ``module.``, FSDP/compile wrappers) from every key."""
    out = {}
    for k, v in sd.items():
        for p in _PREFIXES:
            k = k.replace("." + p, ".") if not k.startswith(p) else k[len(p):]
        out[k] = v
    return out


def to_diffusers(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Original Wan / Self-Forcing key layout → diffusers ``WanTransformer3DModel`` names."""
    return {_rename(k, 0): v for k, v in strip_prefixes(sd).items()}


def to_original(sd: dict[str, torch.Tensor], prefix: str = "") -> dict[str, torch.Tensor]:
    """Diffusers names → the original Wan layout (``prefix="model."`` gives Self-Forcing's generator keys)."""
    return {prefix + _rename(k, 1): v for k, v in sd.items()}


def _read_file(path: Path) -> dict[str, Any]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickled objects other than tensors/containers
        raise CheckpointError(f"{path}: cannot be read with torch.load(weights_only=True) "
                              f"({str(e).splitlines()[0][:160]})") from None


def _read_sharded(folder: Path) -> dict[str, torch.Tensor]:
    index = sorted(folder.glob("*.safetensors.index.json"))
    files = sorted({folder / f for f in json.loads(index[0].read_text())["weight_map"].values()}) if index \
        else sorted(folder.glob("*.safetensors"))
    if not files:
        raise CheckpointError(f"{folder}: no .safetensors weights in this folder")
    sd: dict[str, torch.Tensor] = {}
    for f in files:
        sd.update(_read_file(f))
    return sd


def detect_format(path: Path, raw: dict[str, Any] | None = None) -> str:
    """Guess the format of ``path`` (a folder or file) from its config / top-level keys."""
    if path.is_dir():
        for cfg in (path / "transformer" / "config.json", path / "config.json"):
            if cfg.is_file():
                name = json.loads(cfg.read_text()).get("_class_name", "")
                return "diffusers" if name == "WanTransformer3DModel" else "wan"
        return "wan"
    if raw is not None and ("generator" in raw or "generator_ema" in raw):
        return "self_forcing"
    return "wan"


def read_state_dict(path: str | Path, fmt: str = "auto", ema: bool = False) -> dict[str, torch.Tensor]:
    """The transformer weights at ``path`` in diffusers' names (not for ``diffusers`` folders: see :func:`load_net`)."""
    path = Path(path)
    raw = _read_sharded(path) if path.is_dir() else _read_file(path)
    fmt = detect_format(path, raw) if fmt == "auto" else fmt
    if fmt in GENERATOR_FORMATS or "generator" in raw or "generator_ema" in raw:
        key = "generator_ema" if ema else "generator"
        if key not in raw:
            raise CheckpointError(f"{path}: no {key!r} in this checkpoint (top-level keys: {sorted(raw)[:10]}); "
                                  f"set model.checkpoint.ema={not ema}")
        raw = raw[key]
    bad = [k for k, v in raw.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{path}: entries {bad[:5]} are not tensors: not a state dict")
    return to_diffusers(raw)


def merge_lora(sd: dict[str, torch.Tensor], lora: dict[str, torch.Tensor], alpha: float | None = None) -> int:
    """Fold PEFT LoRA factors (``...<name>.lora_A.weight`` / ``lora_B``) into ``sd`` in place; returns the count.

    ``W += (alpha / rank) * B @ A``; ``alpha`` defaults to the rank (scale 1).
    """
    lora = lora.get("generator_lora", lora)
    pairs = {}
    for k, a in lora.items():
        m = re.match(r"^(?:base_model\.model\.)?(.*)\.lora_A(?:\.[^.]+)?\.weight$", k)
        if m:
            pairs[m.group(1)] = (a, lora[k.replace("lora_A", "lora_B")])
    if not pairs:
        raise CheckpointError(f"LoRA file has no '*.lora_A.weight' keys (first keys: {list(lora)[:5]})")
    unknown = []
    for base, (a, b) in pairs.items():
        name = _rename(strip_prefixes({base + ".weight": a}).popitem()[0], 0)
        if name not in sd:
            unknown.append(name)
            continue
        scale = (alpha if alpha is not None else a.shape[0]) / a.shape[0]
        sd[name] = (sd[name].float() + scale * (b.float() @ a.float())).to(sd[name].dtype)
    if unknown:
        raise CheckpointError(f"LoRA targets {len(unknown)} weight(s) the model lacks: {unknown[:8]}")
    return len(pairs)


def load_into(net: torch.nn.Module, sd: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Load ``sd`` into ``net`` strictly; one error listing missing / unexpected / misshapen keys."""
    own = net.state_dict()
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    shapes = [f"{k} {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}" for k in sorted(set(sd) & set(own))
              if sd[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        parts = []
        for what, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes)):
            if keys:
                parts.append(f"{len(keys)} {what}: {', '.join(keys[:6])}{' ...' if len(keys) > 6 else ''}")
        raise CheckpointError(f"{source} does not fit the model ({'; '.join(parts)})")
    net.load_state_dict(sd, strict=True)


def load_net(settings: dict[str, Any], kwargs: dict[str, Any], dtype: torch.dtype = torch.float32):
    """A ``WanTransformer3DModel`` with the weights ``settings`` (``model.checkpoint``) point to.

    Args:
        settings: ``path`` (required), ``format`` (default auto), ``ema`` (generator checkpoints), ``lora`` +
            ``lora_alpha`` (LongLive).
        kwargs: constructor arguments of the expected shape (from the model config), checked against the file.
        dtype: parameter dtype (diffusers' fp32 modules stay fp32).
    """
    from diffusers import WanTransformer3DModel

    fmt = settings.get("format", "auto")
    if fmt not in FORMATS:
        raise CheckpointError(f"model.checkpoint.format={fmt!r}: one of {FORMATS}")
    if not settings.get("path"):
        raise CheckpointError("model.checkpoint.path is not set (a local diffusers folder, Wan file or .pt)")
    path = Path(settings["path"]).expanduser()
    if not path.exists():
        raise CheckpointError(f"model.checkpoint.path={path} does not exist (weights are never downloaded)")
    fmt = detect_format(path) if fmt == "auto" and path.is_dir() else fmt
    if fmt == "diffusers":
        sub = "transformer" if (path / "transformer" / "config.json").is_file() else None
        net = WanTransformer3DModel.from_pretrained(path, subfolder=sub, local_files_only=True, torch_dtype=dtype)
        _check_shape(net.config, kwargs, path)
        return net
    sd = read_state_dict(path, fmt, bool(settings.get("ema", False)))
    if settings.get("lora"):
        merge_lora(sd, _read_file(Path(settings["lora"]).expanduser()), settings.get("lora_alpha"))
    net = WanTransformer3DModel(**kwargs)
    load_into(net, sd, source=str(path))
    return cast(net, dtype)


def cast(net: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    """Cast to ``dtype`` but keep the modules diffusers keeps in fp32 (RoPE, time embedder, modulation, norms)."""
    if dtype == torch.float32:
        return net
    torch.nn.Module.to(net, dtype)  # ModelMixin.to would warn about exactly what the next lines undo
    keep = getattr(net, "_keep_in_fp32_modules", None) or []
    for name, module in net.named_modules():
        if any(k in name.split(".") for k in keep):
            module.float()
    for name, p in net.named_parameters():
        if any(k in name.split(".") for k in keep):
            p.data = p.data.float()
    return net


def _check_shape(config, kwargs: dict[str, Any], path: Path) -> None:
    diff = [f"{k}={config.get(k)!r} (model config says {v!r})" for k, v in kwargs.items()
            if k not in ("rope_max_seq_len",) and _norm(config.get(k)) != _norm(v)]
    if diff:
        raise CheckpointError(f"{path}: transformer config differs from model settings: {'; '.join(diff)}")


def _norm(v: Any) -> Any:
    return list(v) if isinstance(v, tuple | list) else v


def save_diffusers(net: torch.nn.Module, folder: str | Path) -> Path:
    """Write ``net`` as a diffusers folder (``<folder>/transformer/``) that :func:`load_net` reads back."""
    out = Path(folder) / "transformer"
    net.save_pretrained(out, safe_serialization=True)
    return out
