"""CUDA checks (marker ``gpu``; skipped without a GPU): CPU and CUDA agree, flex_attention's BlockMask equals the
SDPA boolean mask (forward and backward), and a tiny distillation trains in bf16 on the GPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from aad_bench.models.attention import attend, block_causal_mask
from aad_bench.models.dit import DiTConfig, VideoDiT

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def _model() -> VideoDiT:
    torch.manual_seed(0)
    m = VideoDiT(DiTConfig(height=32, width=32, patch=4, dim=128, depth=2, heads=4, chunk=4))  # head dim 32: flex
    for p in m.parameters():
        torch.nn.init.normal_(p, std=0.05)
    return m


@pytest.mark.parametrize("causal", [False, True])
def test_cpu_and_cuda_forward_agree(causal):
    torch.backends.cuda.matmul.allow_tf32 = False
    m = _model()
    g = torch.Generator().manual_seed(1)
    x, t = torch.randn(2, 9, 3, 32, 32, generator=g), torch.rand(2, 9, generator=g)
    ref = m(x, t, causal=causal)
    got = m.cuda()(x.cuda(), t.cuda(), causal=causal).cpu()
    assert torch.allclose(ref, got, atol=1e-4, rtol=1e-4), (ref - got).abs().max()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        bf = m(x.cuda(), t.cuda(), causal=causal).float().cpu()
    assert (bf - ref).abs().max() < 0.05 * ref.abs().max()


def test_flex_block_mask_equals_sdpa_bool_mask_with_gradients():
    mask = block_causal_mask(9, 4, 64, device="cuda")  # 576 tokens, flex path (square mask, head dim 64)
    g = torch.Generator(device="cuda").manual_seed(0)
    q, k, v = (torch.randn(2, 4, 576, 64, device="cuda", generator=g, requires_grad=True) for _ in range(3))
    out = attend(q, k, v, mask)
    grads = torch.autograd.grad(out.square().sum(), (q, k, v))
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    ref_grads = torch.autograd.grad(ref.square().sum(), (q, k, v))
    assert torch.allclose(out, ref, atol=2e-3)
    assert all(torch.allclose(a, b, atol=2e-2) for a, b in zip(grads, ref_grads))


def test_tiny_bf16_distillation_on_cuda(tmp_path):
    cmd = [sys.executable, "-m", "aad_bench.cli", "task=distill", "size=tiny", "progress=false", "model.dim=64",
           "trainer.device=cuda", "trainer.precision=bf16", f"paths.out={tmp_path}"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=dict(os.environ))
    assert p.returncode == 0, p.stderr[-3000:]
    (run,) = (tmp_path / "runs").iterdir()
    assert json.loads((run / "results.json").read_text())["status"] == "finished"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [v for r in rows for k, v in r.items() if k.startswith("loss/")]
    assert losses and all(torch.isfinite(torch.tensor(v)) for v in losses)
    prov = json.loads((run / "provenance.json").read_text())["distributed"]
    assert prov["device_type"] == "cuda" and prov["precision"] == "bf16" and prov["ranks"][0]["device"] != "cpu"
