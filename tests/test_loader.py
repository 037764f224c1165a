"""The training loader: batches read clip by clip from the latent cache's shards (never the whole set), a pure
function of the step's generator, and the captions' text embeddings reaching every Stage I–III forward of a
text-conditioned Wan."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_wan_distill import _moving_squares
from wan_helpers import spy_wan_context, tiny_text_encoder

from aad_bench.data import loader
from aad_bench.data.latents import LatentSet, prepare_folder
from aad_bench.data.loader import ShardReader, TrainingSet
from aad_bench.data.manifest import write_folder_set
from aad_bench.models.encoders import TextEncoder
from aad_bench.models.wan_vae import wan_vae_codec
from aad_bench.tasks import distill as distill_task
from aad_bench.training.rng import step_generator

CAPTIONS = ["a red ball moves left", "a cat sits", "a red cat sits", "a ball moves"]


def _grey_clips(n: int, frames: int = 5, size: int = 16) -> list[np.ndarray]:
    return [np.full((frames, size, size, 3), 20 * k + 10, np.uint8) for k in range(n)]


def test_batches_come_from_the_shards_clip_by_clip(tmp_path, monkeypatch):
    write_folder_set(tmp_path / "f", _grey_clips(5), [f"c{i}" for i in range(5)], fps=24)
    data = prepare_folder({"path": str(tmp_path / "f"), "frames": 5, "height": 16, "width": 16, "fps": 24,
                           "shard_size": 2}, wan_vae_codec(random="tiny", batch=4), tmp_path / "cache", "tiny", False)
    whole = data.load_all()
    assert len(data.shards) == 3
    monkeypatch.setattr(loader, "OPEN_SHARDS", 1)  # every switch of shard closes the other one
    reader = ShardReader(data.folder, data.shards)
    ts = TrainingSet(reader)
    assert len(ts) == 5 and ts.shape == tuple(whole["latents"].shape) and not ts.has_text
    for step in range(4):  # the same generator gives the same clips as indexing the whole set
        latents, context = ts.batch(6, step_generator(0, "gan", step))
        idx = torch.randint(5, (6,), generator=step_generator(0, "gan", step))
        assert torch.equal(latents, whole["latents"][idx]) and context is None
        assert reader.captions(idx) == [whole["captions"][i] for i in idx]
    assert len(reader._open) == 1
    toy = torch.randn(7, 3, 2, 4, 4)
    clips, _ = TrainingSet.of(toy).batch(3, torch.Generator().manual_seed(1))
    assert torch.equal(clips, toy[torch.randint(7, (3,), generator=torch.Generator().manual_seed(1))])


@pytest.fixture
def captioned_set(tmp_path):
    write_folder_set(tmp_path / "clips", _moving_squares(), CAPTIONS, fps=8)
    return tmp_path / "clips"


def test_captions_reach_every_stage_of_a_text_wan(tiny_cfg, captioned_set, tmp_path, monkeypatch):
    enc_dir = tiny_text_encoder(tmp_path / "umt5")
    cfg = tiny_cfg("task=distill", "method=aad1", "model=wan_tiny", "codec=wan_vae", "data=folder",
                   f"data.path={captioned_set}", "data.frames=9", "data.height=32", "data.width=32", "data.fps=8",
                   "model.height=4", "model.width=4", "data.shard_size=2", "distill.share_stages=false",
                   f"model.encoders.text={enc_dir}", "method.dmd.early_stop.criterion=motion",
                   "method.dmd.early_stop.every=1")

    def no_whole_set(self):
        raise AssertionError("the whole latent set was loaded")

    monkeypatch.setattr(LatentSet, "load_all", no_whole_set)
    calls = spy_wan_context(monkeypatch, ("ode_stage", "dmd_stage", "gan_stage"))

    res = distill_task.run(cfg)
    assert res["status"] == "finished", res.get("reason")
    embs = TextEncoder(str(enc_dir), None, 16).encode(CAPTIONS)  # wan_tiny: text_len 16, text_dim 32
    assert len({tuple(e.flatten().tolist()) for e in embs}) == 4  # four different prompts
    for s in ("teacher", "ode", "dmd", "gan"):
        mine = [c for c in calls if c[0] == s]
        assert mine and all(c[3] is not None for c in mine), f"{s}: a forward without the captions"
        assert all(c[3].shape == (c[2], 16, 32) for c in mine), s  # one caption per clip of the batch
        rows = torch.cat([c[3] for c in mine])
        match = (rows[:, None] - embs[None]).abs().flatten(2).amax(-1) < 1e-5  # [rows, captions]
        assert match.any(1).all(), f"{s}: text that is not a clip's caption"
    assert {c[1] for c in calls if c[0] in ("dmd", "gan")} == {"forward", "forward_cached"}  # rollouts + scores
