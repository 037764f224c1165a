"""Discriminator factorisation, the approximated R1 penalty and the DMD gradient."""

import pytest
import torch
from omegaconf import OmegaConf

from aad_bench.models.discriminator import Discriminator, approx_r_penalty
from aad_bench.models.dit import DiTConfig, VideoDiT
from aad_bench.training.dmd import dmd_generator_loss


def _backbone() -> VideoDiT:
    torch.manual_seed(0)
    m = VideoDiT(DiTConfig(height=16, width=16, patch=4, dim=32, depth=3, heads=2)).double()
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.1)
    return m


def _clip():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 13, 3, 16, 16, generator=g, dtype=torch.float64)
    t = torch.full((2, 13), 0.3, dtype=torch.float64)
    t[:, 0] = 0
    return x, t


@pytest.mark.parametrize("head,shape", [("video", (2, 1)), ("frame", (2, 12)), ("patch", (2, 12 * 16)),
                                        ("pooled", (2, 2))])
def test_logit_granularity(head, shape):
    d = Discriminator(_backbone(), "bidirectional", head, [0, 2]).double()
    x, t = _clip()
    assert d(x, t).shape == shape


@pytest.mark.parametrize("head", ["frame", "patch"])
def test_causal_discriminator_logit_ignores_later_frames(head):
    d = Discriminator(_backbone(), "causal", head, [1, 2]).double()
    x, t = _clip()
    x2 = x.clone()
    x2[:, 5:] += torch.randn_like(x2[:, 5:])  # change chunks 2 and 3 (frames 5..12)
    a, b = d(x, t), d(x2, t)
    per_frame = 1 if head == "frame" else 16
    first_chunk = 4 * per_frame  # logits of generated frames 1..4 (chunk 1)
    assert torch.allclose(a[:, :first_chunk], b[:, :first_chunk], atol=1e-10)
    assert not torch.allclose(a[:, first_chunk:], b[:, first_chunk:], atol=1e-6)


def test_bidirectional_video_logit_sees_later_frames():
    d = Discriminator(_backbone(), "bidirectional", "video", [1, 2]).double()
    x, t = _clip()
    x2 = x.clone()
    x2[:, -1] += 1.0
    assert not torch.allclose(d(x, t), d(x2, t), atol=1e-6)


def test_frozen_backbone_trains_only_the_head_but_passes_gradients_to_the_clip():
    """FastGen's discriminator: heads on frozen teacher features; the generator still gets a gradient."""
    d = Discriminator(_backbone(), "bidirectional", "pooled", [1, 2], frozen=True).double()
    d.requires_grad_(False)
    d.requires_grad_(True)  # the stage loop toggles D around the generator step: the backbone must stay frozen
    assert d.backbone_parameters() == [] and all(not p.requires_grad for p in d.backbone.parameters())
    x, t = _clip()
    x.requires_grad_(True)
    d(x, t).sum().backward()
    assert all(p.grad is not None for p in d.head_parameters())
    assert all(p.grad is None for p in d.backbone.parameters())
    assert x.grad is not None and x.grad[:, 1:].abs().sum() > 0


def test_head_depth_beyond_backbone_is_rejected():
    with pytest.raises(ValueError, match="depths"):
        Discriminator(_backbone(), "bidirectional", "video", [3])


def test_approximate_r1_tends_to_gradient_penalty():
    d = Discriminator(_backbone(), "bidirectional", "video", [1, 2]).double()
    x, t = _clip()
    x.requires_grad_(True)
    logit = d(x, t)
    (grad,) = torch.autograd.grad(logit.sum(), x)
    exact = grad[:, 1:].pow(2).sum(dim=(1, 2, 3, 4)).mean().item()  # the image frame is not perturbed
    errors = []
    reps = 64  # Monte-Carlo samples of the perturbation, batched into one forward pass
    x_rep, t_rep, l_rep = x.detach().repeat(reps, 1, 1, 1, 1), t.repeat(reps, 1), logit.detach().repeat(reps, 1)
    for sigma in (1e-2, 1e-3, 1e-4):
        g = torch.Generator().manual_seed(0)
        est = approx_r_penalty(d, x_rep, t_rep, l_rep, sigma, g).item()
        errors.append(abs(est / sigma**2 - exact) / exact)
    assert errors[-1] < 0.15  # Monte-Carlo error of 200 samples dominates at small sigma
    assert errors[-1] <= errors[0] + 0.05


class _Replicated(torch.nn.Module):
    """A discriminator whose ``k`` logits are all one and the same function of the clip."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k

    def forward(self, x, t):
        return x[:, 1:].sum(dim=(1, 2, 3, 4))[:, None].expand(-1, self.k)


def test_r1_r2_is_averaged_over_logits_like_the_loss():
    """One λ = one strength: the penalty does not grow with the number of logits (video 1, frame 16, patch 1024)."""
    x, t = _clip()
    pens = []
    for k in (1, 16, 1024):
        d = _Replicated(k)
        pens.append(approx_r_penalty(d, x, t, d(x, t), 0.05, torch.Generator().manual_seed(0)).item())
    assert pens[1] == pytest.approx(pens[0]) and pens[2] == pytest.approx(pens[0])


class _GaussianScore(torch.nn.Module):
    """Exact flow velocity for data x0 ~ N(mu, I) under x_t = (1-t) x0 + t eps."""

    def __init__(self, mu: float) -> None:
        super().__init__()
        self.mu = mu

    def x0(self, x, t):
        t = t.view(*t.shape, 1, 1, 1)
        a = 1 - t
        return self.mu + a / (a**2 + t**2) * (x - a * self.mu)

    def forward(self, x, t, causal=False, cond_drop=None):
        tt = t.view(*t.shape, 1, 1, 1).clamp_min(1e-6)
        return (x - self.x0(x, t)) / tt


def test_dmd_gradient_direction_and_scale():
    real, fake = _GaussianScore(1.0), _GaussianScore(-1.0)
    dc = OmegaConf.create({"t_min": 0.5, "t_max": 0.5, "cfg": 1.0})
    x_hat = torch.zeros(2, 4, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    cond = torch.zeros(2, 3, 4, 4, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    loss, _ = dmd_generator_loss(x_hat, cond, real, fake, dc, g)
    loss.backward()
    # at t = 0.5 both posteriors mean mu + (x_t - mu/2): x0_fake - x0_real = (-1 - 1)(1 - 0.5) = -1 everywhere,
    # normalised by mean|x_hat - x0_real|; the descent direction -grad pushes x_hat towards the real mean.
    g = torch.Generator().manual_seed(0)
    torch.rand(2, generator=g)
    noise = torch.randn(x_hat.shape, generator=g).double()
    x_t = 0.5 * noise
    x0_real = real.x0(torch.cat([cond[:, None], x_t], 1), torch.full((2, 5), 0.5, dtype=torch.float64))[:, 1:]
    norm = x0_real.abs().mean(dim=(1, 2, 3, 4), keepdim=True)
    expected = (-1.0 / norm).expand_as(x_hat) / x_hat.numel()  # d(0.5*mean(g^2))/dx = g / numel
    assert torch.allclose(x_hat.grad, expected, rtol=1e-4)
    assert (x_hat.grad < 0).all()
