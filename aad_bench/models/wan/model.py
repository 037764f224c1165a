"""Wan 2.1 behind the toy backbone's interface: :class:`WanVideo` (teacher, causal student, critic, D backbone).

``x`` is ``[B, F, C, H, W]`` latents with frame 0 the clean conditioning latent; ``t`` is ``[B, F]`` flow times in
[0, 1] (1 = noise). Wan's own convention is the same rectified flow: ``x_t = (1 - sigma) x0 + sigma noise``, the
network predicts ``noise - x0`` and is fed ``timestep = 1000 * sigma`` (diffusers' FlowMatch schedulers), so the
output is the velocity of :mod:`aad_bench.models.rectified_flow` unchanged.

The diffusers modules are used as they are (patch embedding, time/text/image embedders, blocks' attention,
norms and FFN, output head); only the block wiring is ours, so that each *frame* gets its own modulation (2-D
timesteps without materialising a ``[B, L, 6, D]`` tensor per token) and self-attention gets a mask and a cache.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from aad_bench.models.attention import KVCache, chunk_ids
from aad_bench.models.wan.attention import (
    AttnState,
    StreamingSelfAttnProcessor,
    flex_block_mask,
    rope_angles,
    sdpa_mask,
)
from aad_bench.models.wan.config import WanConfig


@dataclass
class WanContext:
    """Conditioning beyond the latent frames.

    Attributes:
        text: ``[B, L<=text_len, text_dim]`` umT5 embeddings (zero-padded to ``text_len`` here).
        image: ``[B, 257, image_dim]`` CLIP tokens (I2V checkpoints only).
        image_latents: ``[B, F, C, H, W]`` Wan-I2V's ``y`` (VAE of the image followed by black frames), indexed by
            absolute frame; when absent the conditioning latent followed by zeros is used.
    """

    text: torch.Tensor | None = None
    image: torch.Tensor | None = None
    image_latents: torch.Tensor | None = None


@dataclass
class WanKVCache(KVCache):
    """The toy :class:`KVCache` (sink + window of chunks, keys before RoPE) plus the stream's conditioning."""

    context: WanContext | None = None


class WanVideo(nn.Module):
    """A diffusers ``WanTransformer3DModel`` with bidirectional / block-causal / streaming attention.

    Args:
        cfg: shape and streaming settings.
        net: an existing transformer (e.g. loaded from a checkpoint); a randomly initialised one otherwise.
    """

    def __init__(self, cfg: WanConfig, net: nn.Module | None = None) -> None:
        super().__init__()
        from diffusers import WanTransformer3DModel

        self.cfg = cfg
        self.net = net if net is not None else WanTransformer3DModel(**cfg.diffusers_kwargs())
        for i, blk in enumerate(self.net.blocks):
            blk.attn1.set_processor(StreamingSelfAttnProcessor(i))
        # CFG's unconditional text: zeros = an empty prompt as Wan pads it; set_null_text() installs a negative prompt
        self.register_buffer("null_text", torch.zeros(1, cfg.text_len, cfg.text_dim), persistent=False)
        self._flex_masks: dict[tuple, object] = {}

    @property
    def blocks(self) -> nn.ModuleList:
        """The transformer blocks (discriminator feature depths index them)."""
        return self.net.blocks

    def set_null_text(self, emb: torch.Tensor) -> None:
        """Use ``emb`` ``[1, L, text_dim]`` (e.g. Wan's negative prompt) as the unconditional text of CFG."""
        self.null_text = self._pad_text(emb.to(self.null_text)).detach()

    # -- conditioning -----------------------------------------------------------------------------
    def _pad_text(self, text: torch.Tensor) -> torch.Tensor:
        c = self.cfg
        if text.ndim != 3 or text.shape[-1] != c.text_dim:
            raise ValueError(f"text embeddings must be [B, L, {c.text_dim}] (model.text_dim), got {tuple(text.shape)}")
        if text.shape[1] > c.text_len:
            raise ValueError(f"text embeddings have {text.shape[1]} tokens, more than model.text_len={c.text_len}")
        return nn.functional.pad(text, (0, 0, 0, c.text_len - text.shape[1]))

    def _conditioning(self, b: int, context, cond_drop: torch.Tensor | None):
        """``(text [B, text_len, text_dim], CLIP tokens or None)`` with CFG's drop applied."""
        ctx = context if isinstance(context, WanContext) else WanContext(text=context)
        text = self.null_text.expand(b, -1, -1) if ctx.text is None else self._pad_text(ctx.text)
        text = text.expand(b, -1, -1) if text.shape[0] == 1 else text
        image = ctx.image
        if self.cfg.i2v and image is None:
            raise ValueError("an I2V Wan checkpoint needs CLIP image tokens: pass context=WanContext(text, image=...) "
                             "(model.encoders.image)")
        if cond_drop is not None:
            drop = cond_drop.view(b, 1, 1)
            if self.cfg.cfg_drop in ("text", "both"):
                text = torch.where(drop, self.null_text.to(text), text)
            if image is not None and self.cfg.cfg_drop in ("image", "both"):
                image = torch.where(drop, torch.zeros_like(image), image)
        return text, image

    def _frames_in(self, x: torch.Tensor, first: int, image: torch.Tensor, context,
                   cond_drop: torch.Tensor | None) -> torch.Tensor:
        """Model input ``[B, C_in, F, H, W]``: latents, and for I2V the first-frame mask and image latents."""
        b, f = x.shape[:2]
        drop_img = cond_drop is not None and self.cfg.cfg_drop in ("image", "both")
        if drop_img and first == 0:  # the unconditional branch does not see the conditioning frame
            x = torch.cat([torch.where(cond_drop.view(b, 1, 1, 1, 1), 0.0, x[:, :1]), x[:, 1:]], dim=1)
        parts = [x]
        if self.cfg.i2v:
            idx = torch.arange(first, first + f, device=x.device)
            mask = (idx == 0).to(x.dtype).view(1, f, 1, 1, 1).expand(b, f, 4, *x.shape[3:])
            y = getattr(context, "image_latents", None)
            if y is None:
                y = torch.zeros_like(x)
                if first == 0:
                    y[:, 0] = image
            else:
                y = y[:, first:first + f].to(x)
                y = torch.cat([y, y.new_zeros(b, f - y.shape[1], *y.shape[2:])], dim=1)
            if drop_img:
                y = torch.where(cond_drop.view(b, 1, 1, 1, 1), 0.0, y)
            parts += [mask, y]
        return torch.cat(parts, dim=2).transpose(1, 2)

    def _embed(self, x, t, first, image, context, cond_drop):
        """Tokens ``[B, F*n, D]``, per-frame ``temb`` ``[B, F, D]`` and ``tproj`` ``[B, F, 6, D]``, cross context."""
        b, f = x.shape[:2]
        c = self.cfg
        if x.shape[2:] != (c.channels, c.height, c.width):
            raise ValueError(f"model expects latents {c.channels}x{c.height}x{c.width}, got "
                             f"{'x'.join(map(str, x.shape[2:]))}")
        if t.shape != (b, f):
            raise ValueError(f"t must be [B, F] = {(b, f)}, got {tuple(t.shape)}")
        dtype = self.net.patch_embedding.weight.dtype
        tok = self.net.patch_embedding(self._frames_in(x, first, image, context, cond_drop).to(dtype))
        tok = tok.flatten(2).transpose(1, 2).contiguous()
        text, img = self._conditioning(b, context, cond_drop)
        temb, tproj, ctx, img = self.net.condition_embedder(
            (t * 1000.0).flatten(), text.to(dtype), None if img is None else img.to(dtype), timestep_seq_len=f)
        ctx = ctx if img is None else torch.cat([img, ctx], dim=1)
        return tok, temb, tproj.unflatten(2, (6, -1)), ctx

    # -- blocks --------------------------------------------------------------------------------
    def _block(self, i: int, h: torch.Tensor, ctx: torch.Tensor, tproj: torch.Tensor, st: AttnState) -> torch.Tensor:
        """One Wan block with per-frame modulation (same arithmetic as diffusers' 2-D-timestep path)."""
        blk = self.net.blocks[i]
        blk.attn1.processor.state = st  # (re)bound here so checkpoint recomputation sees this pass's state
        b, n_tok, d = h.shape
        f = tproj.shape[1]
        sh, sc, g, c_sh, c_sc, c_g = (blk.scale_shift_table.unsqueeze(0) + tproj.float()).unbind(2)

        def per_frame(z, scale, shift=None):
            z = z.view(b, f, n_tok // f, d) * (scale[:, :, None] if shift is None else 1 + scale[:, :, None])
            return (z if shift is None else z + shift[:, :, None]).view(b, n_tok, d)

        a = blk.attn1(per_frame(blk.norm1(h.float()), sc, sh).type_as(h), None, None, None)
        h = (h.float() + per_frame(a, g)).type_as(h)
        h = h + blk.attn2(blk.norm2(h.float()).type_as(h), ctx, None, None)
        ff = blk.ffn(per_frame(blk.norm3(h.float()), c_sc, c_sh).type_as(h))
        return (h.float() + per_frame(ff.float(), c_g)).type_as(h)

    def _run(self, tok, ctx, tproj, st: AttnState, features: tuple[int, ...]):
        feats = []
        for i in range(len(self.net.blocks)):
            if self.cfg.grad_ckpt and torch.is_grad_enabled():
                tok = checkpoint(self._block, i, tok, ctx, tproj, st, use_reentrant=False)
            else:
                tok = self._block(i, tok, ctx, tproj, st)
            if i in features:
                feats.append(tok)
        if features and len(feats) != len(set(features)):
            raise ValueError(f"feature depths {features} outside 0..{len(self.net.blocks) - 1}")
        return tok, feats

    def _head(self, h: torch.Tensor, temb: torch.Tensor, frames: int, out_dtype: torch.dtype) -> torch.Tensor:
        b, n_tok, d = h.shape
        c, p, (gh, gw) = self.cfg, self.cfg.patch, self.cfg.grid
        shift, scale = (self.net.scale_shift_table.unsqueeze(0) + temb.unsqueeze(2)).unbind(2)
        z = self.net.norm_out(h.float()).view(b, frames, -1, d) * (1 + scale[:, :, None]) + shift[:, :, None]
        z = self.net.proj_out(z.view(b, n_tok, d).type_as(h))
        z = z.reshape(b, frames, gh, gw, p, p, c.channels).permute(0, 1, 6, 2, 4, 3, 5)
        return z.reshape(b, frames, c.channels, c.height, c.width).to(out_dtype)

    # -- masks ---------------------------------------------------------------------------------
    def _use_flex(self, device: torch.device) -> bool:
        return self.cfg.attention == "flex" or (self.cfg.attention == "auto" and device.type == "cuda")

    def _mask(self, frames: int, first: int, cached: int, device: torch.device, full: bool):
        """``None`` when every key is visible, else an SDPA bool mask or a flex BlockMask."""
        if full or (frames == 1 or (first > 0 and frames <= self.cfg.chunk and (first - 1) % self.cfg.chunk == 0)):
            return None  # one whole chunk after the cache (or bidirectional): nothing to hide
        n = self.cfg.tokens_per_frame
        if not self._use_flex(device):
            return sdpa_mask(frames, self.cfg.chunk, n, first, cached, device)
        rel = tuple(chunk_ids(frames, self.cfg.chunk, first).tolist())
        key = (tuple(r - rel[0] for r in rel), cached, str(device))
        if key not in self._flex_masks:
            if len(self._flex_masks) > 64:
                self._flex_masks.clear()
            self._flex_masks[key] = flex_block_mask(frames, self.cfg.chunk, n, first, cached, device)
        return self._flex_masks[key]

    def _angles(self, pos: torch.Tensor) -> torch.Tensor:
        return rope_angles(pos, *self.cfg.grid, self.cfg.head_dim).float()

    # -- public interface ---------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, t: torch.Tensor, causal: bool = False, cond_drop: torch.Tensor | None = None,
                features: tuple[int, ...] = (), head: bool = True, context=None):
        """Velocity ``noise - x0`` for every frame (and block outputs ``[B, F*n, D]`` for ``features``).

        Args:
            x: ``[B,F,C,H,W]`` latents, frame 0 = conditioning latent.
            t: ``[B,F]`` flow times (frame 0 should be 0).
            causal: block-causal mask (student, causal discriminator) instead of bidirectional.
            cond_drop: ``[B]`` bool, the unconditional branch of CFG (what it drops: ``model.cfg_drop``).
            features: 0-based block indices whose outputs are returned too.
            head: compute the velocity head.
            context: text embeddings ``[B, L, text_dim]`` or a :class:`WanContext`; ``None`` = empty prompt.
        """
        b, f = x.shape[:2]
        self.cfg.check_frames(f)
        tok, temb, tproj, ctx = self._embed(x, t, 0, x[:, 0], context, cond_drop)
        ang = self._angles(torch.arange(f, device=x.device))
        st = AttnState(ang_q=ang, ang_k=ang, mask=self._mask(f, 0, 0, x.device, full=not causal))
        tok, feats = self._run(tok, ctx, tproj, st, tuple(features))
        out = self._head(tok, temb, f, x.dtype) if head else None
        return (out, feats) if features else out

    def new_cache(self, window: bool = True) -> WanKVCache:
        """An empty KV cache (sink + sliding window from the config; ``window=False`` = unbounded)."""
        return WanKVCache(len(self.net.blocks), self.cfg.sink_chunks, self.cfg.window_frames if window else None)

    def forward_cached(self, x: torch.Tensor, t: torch.Tensor, cache: KVCache, write_frames: int = 0,
                       cond_drop: torch.Tensor | None = None, context=None) -> torch.Tensor:
        """Velocity for frames that follow the cached ones; block-causal inside ``x`` too.

        The first ``write_frames`` frames of ``x`` (whole chunks) go into the cache afterwards, as in the toy
        backbone. ``context`` given on the first call is remembered by the cache for the rest of the stream.
        """
        b, f = x.shape[:2]
        n, first, cached = self.cfg.tokens_per_frame, cache.frames_seen, cache.frames
        if first == 0:
            cache.image = x[:, 0]
            if isinstance(cache, WanKVCache):
                cache.context = context if isinstance(context, WanContext) else WanContext(text=context)
        if context is None:
            context = getattr(cache, "context", None)
        ids = chunk_ids(f, self.cfg.chunk, first)
        tok, temb, tproj, ctx = self._embed(x, t, first, cache.image, context, cond_drop)
        pos = torch.arange(cached + f, device=x.device)  # relative: cached frames contiguous, new ones follow
        depth = len(self.net.blocks)
        st = AttnState(ang_q=self._angles(pos[cached:]), ang_k=self._angles(pos),
                       mask=self._mask(f, first, cached, x.device, full=False), past_k=list(cache.k),
                       past_v=list(cache.v), write_tokens=write_frames * n, new_k=[None] * depth, new_v=[None] * depth)
        tok, _ = self._run(tok, ctx, tproj, st, ())
        if write_frames:
            for i in range(depth):
                cache.append(i, st.new_k[i], st.new_v[i])
            w_ids = ids[:write_frames].tolist()
            cache.commit([w_ids.count(k) for k in dict.fromkeys(w_ids)], n)
        return self._head(tok, temb, f, x.dtype)
