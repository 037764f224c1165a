"""data=folder: clip lists, decoding (fps resampling, resize + centre crop), the resumable latent cache across
ranks, skips for unreadable / too-short / uncaptioned clips, and the batch loader."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from aad_bench.data.decode import load_clip
from aad_bench.data.latents import LatentSet, build_latent_cache, prepare_folder
from aad_bench.data.manifest import read_clips, write_folder_set
from aad_bench.data.shards import run_shards
from aad_bench.models.wan_vae import wan_vae_codec
from aad_bench.video.io import VideoReadError


def _clips(n=5, frames=20, h=48, w=96, seed=0):
    """Frame i has grey level 10*i, with a bright vertical stripe in the middle columns."""
    vids = []
    for k in range(n):
        v = np.repeat((10 * np.arange(frames, dtype=np.uint8) + k)[:, None, None, None], 3, axis=3)
        v = np.broadcast_to(v, (frames, h, w, 3)).copy()
        v[:, :, w // 2 - 8:w // 2 + 8] = 250
        vids.append(v)
    return vids


class CountingCodec:
    """The tiny Wan VAE, counting clips it encodes (to see which shards were recomputed)."""

    def __init__(self, fail_after: int | None = None):
        self.inner, self.calls, self.fail_after = wan_vae_codec(random="tiny", batch=4), 0, fail_after

    def latent_frames(self, f):
        return self.inner.latent_frames(f)

    def encode(self, video):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("interrupted")
        self.calls += 1
        return self.inner.encode(video)


def test_clip_lists(tmp_path):
    write_folder_set(tmp_path / "f", _clips(3), ["one", "two", "three"], fps=24)
    clips, skipped = read_clips(tmp_path / "f")
    assert [c.caption for c in clips] == ["one", "two", "three"] and not skipped
    (tmp_path / "f" / "clip-00001.txt").unlink()
    with pytest.raises(ValueError, match="clip clip-00001.mp4 has no caption \\(data.caption_missing=error"):
        read_clips(tmp_path / "f")
    clips, skipped = read_clips(tmp_path / "f", "skip")
    assert len(clips) == 2 and skipped == [{"id": "clip-00001.mp4", "reason": "no caption"}]
    assert read_clips(tmp_path / "f", "empty")[0][1].caption == ""
    (tmp_path / "f" / "captions.jsonl").write_text(json.dumps({"path": "clip-00001.mp4", "caption": "TWO"}) + "\n")
    assert read_clips(tmp_path / "f")[0][1].caption == "TWO"
    (tmp_path / "m.csv").write_text("video,text\nf/clip-00002.mp4,from csv\nf/clip-00000.mp4,first\n")
    clips, _ = read_clips(tmp_path / "m.csv")
    assert [(c.id, c.caption) for c in clips] == [("f/clip-00002.mp4", "from csv"), ("f/clip-00000.mp4", "first")]
    assert clips[0].path.is_file()


def test_decode_fps_and_centre_crop(tmp_path):
    write_folder_set(tmp_path, _clips(1), ["x"], fps=24)
    clip = load_clip(tmp_path / "clip-00000.mp4", frames=5, height=32, width=32, fps=12)
    assert clip.shape == (5, 32, 32, 3) and clip.dtype == np.uint8
    grey = clip[:, :, 0, 0].mean(axis=1)
    np.testing.assert_allclose(grey, [0, 20, 40, 60, 80], atol=6)  # every other source frame
    assert clip[:, :, 16].mean() > 200 and clip[:, :, 1].mean() < 120  # the stripe stays in the middle
    with pytest.raises(VideoReadError, match="too short: 20 frames at 24 fps give 10 frames at 12 fps, 11 needed"):
        load_clip(tmp_path / "clip-00000.mp4", frames=11, height=32, width=32, fps=12)


def test_latent_cache_skips_and_resumes(tmp_path):
    write_folder_set(tmp_path / "f", _clips(6), [f"c{i}" for i in range(6)], fps=24)
    (tmp_path / "f" / "clip-00003.mp4").write_bytes(b"not a video")
    clips, _ = read_clips(tmp_path / "f")
    kw = dict(frames=9, height=32, width=32, fps=24, shard_size=2, codec_id="tiny", progress=False)
    with pytest.raises(KeyboardInterrupt):
        build_latent_cache(clips, CountingCodec(fail_after=2), tmp_path / "cache", **kw)
    folder = next((tmp_path / "cache").iterdir())
    assert sorted(p.name for p in folder.glob("shard-*.pt")) == ["shard-00000.pt", "shard-00001.pt"]
    codec = CountingCodec()
    assert build_latent_cache(clips, codec, tmp_path / "cache", **kw) == folder
    assert codec.calls == 1  # only the unfinished third shard
    data = LatentSet(folder)
    assert len(data) == 5 and [s["id"] for s in data.skipped] == ["clip-00003.mp4"]
    assert "cannot decode video" in data.skipped[0]["reason"]
    allc = data.load_all()
    assert allc["latents"].shape == (5, 3, 16, 4, 4) and "c3" not in allc["captions"]
    torch.testing.assert_close(allc["latents"][0], wan_vae_codec(random="tiny", batch=4).encode(
        torch.from_numpy(load_clip(clips[0].path, 9, 32, 32, 24)).permute(0, 3, 1, 2)[None].float() / 127.5 - 1)[0])
    again = CountingCodec()
    build_latent_cache(clips, again, tmp_path / "cache", **kw)
    assert again.calls == 0
    with pytest.raises(ValueError, match="a clip of 10 frames; the Wan VAE needs 1 \\+ 4k"):
        build_latent_cache(clips, again, tmp_path / "cache", **{**kw, "frames": 10})


def test_batches_cover_every_clip_each_epoch(tmp_path):
    write_folder_set(tmp_path / "f", _clips(5), [f"c{i}" for i in range(5)], fps=24)
    data = prepare_folder({"path": str(tmp_path / "f"), "frames": 5, "height": 16, "width": 16, "fps": 24,
                           "shard_size": 2}, wan_vae_codec(random="tiny", batch=4), tmp_path / "cache", "tiny", False)
    it = data.batches(batch=1, seed=3)
    first = [next(it)["ids"][0] for _ in range(5)]
    second = [next(it)["ids"][0] for _ in range(5)]
    assert sorted(first) == sorted(second) == [f"clip-{i:05d}.mp4" for i in range(5)] and first != second
    b = next(data.batches(batch=2, seed=0))
    assert b["latents"].shape == (2, 2, 16, 2, 2) and len(b["captions"]) == 2


def test_run_shards_refuses_a_different_job(tmp_path):
    def work(xs):
        return {"n": len(xs), "v": torch.tensor(list(xs))}

    run_shards([1, 2, 3], 2, tmp_path, work, {"job": 1}, progress=False)
    with pytest.raises(ValueError, match="holds shards of a different job"):
        run_shards([1, 2, 3], 2, tmp_path, lambda xs: {"n": len(xs)}, {"job": 2}, progress=False)


def _rank_worker(rank: int, root: str, result: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"file://{root}/pg", rank=rank, world_size=2)
    try:
        clips, _ = read_clips(f"{root}/f")
        codec = CountingCodec()
        folder = build_latent_cache(clips, codec, f"{root}/cache", frames=5, height=16, width=16, fps=24,
                                    shard_size=1, codec_id="tiny", progress=False)
        ids = [b["ids"][0] for b, _ in zip(LatentSet(folder).batches(batch=1, seed=0), range(2))]
        with open(f"{result}-{rank}.json", "w") as f:
            json.dump({"calls": codec.calls, "ids": ids}, f)
    finally:
        torch.distributed.destroy_process_group()


def test_latent_cache_split_across_ranks(tmp_path):
    write_folder_set(tmp_path / "f", _clips(4, frames=8), [f"c{i}" for i in range(4)], fps=24)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.multiprocessing.spawn(_rank_worker, args=(str(tmp_path), str(tmp_path / "r")), nprocs=2)
    res = [json.loads((tmp_path / f"r-{r}.json").read_text()) for r in range(2)]
    assert [r["calls"] for r in res] == [2, 2]  # 4 one-clip shards dealt to 2 ranks
    assert not set(res[0]["ids"]) & set(res[1]["ids"])  # each rank reads its own clips of the shared stream
    assert LatentSet(next((tmp_path / "cache").iterdir())).index["kept"] == 4
