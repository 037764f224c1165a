"""Public checkpoints beside our runs: `sample --public` → `eval` → `report` in one table, text conditioning at
sampling time, and the one-line errors. The public model is a tiny Wan saved in Self-Forcing's key layout."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image
from wan_helpers import self_forcing_checkpoint, tiny_model, tiny_settings, tiny_text_encoder

from aad_bench.cli import main
from aad_bench.models.codec import codec_for
from aad_bench.models.dit import DiTConfig, VideoDiT
from aad_bench.models.wan import build_wan
from aad_bench.sampling.public import compose_public
from aad_bench.sampling.samplers import causal_rollout, teacher_sample
from aad_bench.sampling.text import caption_context
from aad_bench.tasks import distill as distill_task
from aad_bench.video.io import clips_to_tensor, read_video, to_uint8

TINY = ["model=wan_tiny", "model.height=2", "model.width=2"]  # 16x16 video: the tiny toy world's resolution
SHAPE = {"height": 2, "width": 2, "chunk": 3, "window_frames": 21}  # what the public sampler maps onto wan_tiny


def _sample(*args: str) -> int:
    return main(["sample", "--public", *args])


def _rows(md: str, table: str) -> list[str]:
    """Row labels of the Markdown table that follows the line ``table``."""
    lines = md.split(table, 1)[1].splitlines()[4:]  # rest of the title line, blank, header, separator
    return [ln.split("|")[1].strip() for ln in lines[:next(i for i, ln in enumerate(lines) if not ln.startswith("|"))]]


def test_public_model_and_our_run_in_one_report(tiny_cfg, tmp_path, capsys):
    run = Path(distill_task.run(tiny_cfg("task=distill", "method=dmd"))["run_dir"])
    ckpt = self_forcing_checkpoint(tmp_path / "self_forcing_dmd.pt", **SHAPE)
    args = ["self_forcing_dmd", "--like", str(run), "--sets", "train_len", *TINY, f"public.checkpoint.path={ckpt}",
            f"paths.out={tmp_path}", "progress=false"]
    assert _sample(*args) == 0
    pub = next(run.parent.glob("public-self_forcing_dmd-*"))
    res = json.loads((pub / "results.json").read_text())
    assert res["status"] == "finished" and res["task"] == "public" and res["seed"] == 0  # the run's seed: pairs
    assert res["method_info"] == {"name": "self_forcing_dmd", "display": "Self Forcing (public)", "order": 5,
                                  "summary": res["method_info"]["summary"], "stages": [], "disc": None,
                                  "nfe_per_chunk": 4, "code": None, "source": f"public checkpoint: {ckpt}"}
    cfg = yaml.safe_load((pub / "config.yaml").read_text())
    assert cfg["model"]["checkpoint"] == {"path": str(ckpt), "format": "self_forcing", "ema": False}
    assert (cfg["model"]["chunk"], cfg["model"]["window_frames"], cfg["public"]["model"]) == (3, 21, "wan_tiny")
    assert json.loads((pub / "provenance.json").read_text())["device"] == "cpu"
    # the run's videos, one to one: same names, conditioning images, seeds and lengths (+ toy ground truth)
    assert sorted(p.name for p in (pub / "videos").iterdir()) == ["train_len"]  # --sets: only that of the run's
    ours = json.loads((run / "videos/train_len/index.json").read_text())["videos"]
    theirs = json.loads((pub / "videos/train_len/index.json").read_text())["videos"]
    assert list(theirs) == list(ours)
    for name, e in ours.items():
        t = theirs[name]
        assert (t["seed"], t["frames"], t["gt"]) == (e["seed"], e["frames"], e["gt"])
    # the first video is what the checkpoint generates from that image and seed
    name, entry = next(iter(json.loads((pub / "videos/train_len/index.json").read_text())["videos"].items()))
    image = np.array(Image.open(run / "videos/train_len" / entry["image"]).convert("RGB"))[None, None]
    model = build_wan(tiny_settings(**SHAPE, checkpoint={"path": str(ckpt), "format": "self_forcing"})).eval()
    codec = codec_for(compose_public("self_forcing_dmd", [*TINY, "public.like=x"]))
    cond = codec.encode(clips_to_tensor(image))[:, 0]
    noise = torch.randn((1, 3, 16, 2, 2), generator=torch.Generator().manual_seed(entry["seed"]))
    with torch.no_grad():
        gen = causal_rollout(model, cond, 1, noise=noise, steps=(1.0, 0.9375, 0.8333333, 0.625),
                             generator=torch.Generator().manual_seed(entry["seed"]))[:, :2]
    want = to_uint8(codec.decode(torch.cat([cond[:, None], gen], 1))[0])
    got, _ = read_video(pub / "videos/train_len" / name)
    assert got.shape == want.shape and np.abs(got.astype(int) - want).mean() < 4  # x264 at 16x16
    # a rerun keeps the finished folder
    assert _sample(*args) == 0 and "already finished" in capsys.readouterr().out
    # eval both, one report: both arms in the same table, named by display
    assert main(["eval", str(run.parent), "--device", "cpu", "--metrics", "temporal_flickering,imaging_quality"]) == 0
    assert main(["report", str(run.parent), "--out", str(tmp_path / "report"), "--no-figures"]) == 0
    md = (tmp_path / "report" / "report.md").read_text()
    assert _rows(md, "**Main comparison") == ["Self Forcing (public)", "DMD (Stage II)"]
    df = pd.read_csv(tmp_path / "report" / "runs.csv")
    flicker = df[(df.metric == "temporal_flickering") & (df.set == "train_len")]
    assert sorted(flicker.title) == ["DMD (Stage II)", "Self Forcing (public)"] and flicker.value.notna().all()
    assert sorted(set(df.arm)) == ["dmd", "self_forcing_dmd"]


def test_public_model_on_a_vbench_i2v_folder_with_prompts(tmp_path, capsys):
    """Captions become umT5 embeddings (cached) that reach the model; VBench-I2V names and images."""
    folder = tmp_path / "i2v"
    folder.mkdir()
    prompts = {"ball.png": "a red ball moves left", "cat.png": "a cat sits"}
    rng = np.random.default_rng(0)
    for f in prompts:
        Image.fromarray(rng.integers(0, 255, (24, 20, 3), dtype=np.uint8)).save(folder / f)
    (folder / "info.json").write_text(json.dumps([{"image_name": f, "prompt_en": p} for f, p in prompts.items()]))
    base = tiny_text_encoder(tmp_path / "wan")
    ckpt = self_forcing_checkpoint(tmp_path / "sf.pt", **SHAPE)
    common = [*TINY, f"public.checkpoint.path={ckpt}", "public.sampler.frames=9", "public.sampler.fps=8",
              f"paths.out={tmp_path}", "progress=false"]
    out = tmp_path / "pub"
    assert _sample("self_forcing_dmd", "--images", str(folder), "--out", str(out), f"public.base={base}", *common) == 0
    index = json.loads((out / "videos/i2v/index.json").read_text())
    assert index["sampling"]["prompts"] == "captions" and index["fps"] == 8
    assert {k: v["caption"] for k, v in index["videos"].items()} == {"ball-0.mp4": prompts["ball.png"],
                                                                       "cat-0.mp4": prompts["cat.png"]}
    assert all(v["frames"] == 9 for v in index["videos"].values()) and (out / "videos/i2v/images/cat.png").is_file()
    assert len(list((tmp_path / "cache" / "encoders" / "text").rglob("*.pt"))) == 2  # once per prompt
    # the prompt changed the video: the same image and seed with the empty prompt differ. Sampled with the Hydra
    # form first; the verb with the same settings finds the same (finished) folder
    assert main(["task=public", "+public=self_forcing_dmd", f"public.images={folder}", "public.sampler.text=empty",
                 *common]) == 0
    empty = next((tmp_path / "runs").glob("public-self_forcing_dmd-*"))
    assert _sample("self_forcing_dmd", "--images", str(folder), "public.sampler.text=empty", *common) == 0
    assert "already finished" in capsys.readouterr().out
    assert json.loads((empty / "videos/i2v/index.json").read_text())["sampling"]["prompts"].startswith("empty")
    a, b = read_video(out / "videos/i2v/cat-0.mp4")[0], read_video(empty / "videos/i2v/cat-0.mp4")[0]
    assert np.abs(a[1:].astype(int) - b[1:]).mean() > 0.01  # a tiny random Wan: text moves pixels a little
    assert main(["eval", str(out), "--metrics", "i2v_subject,temporal_flickering"]) == 0  # --device auto


def test_context_reaches_every_sampler():
    """Text embeddings change a Wan model's samples; zeros are the empty prompt; the toy DiT ignores them."""
    m = tiny_model(seed=1, height=2, width=2)
    g = torch.Generator().manual_seed(0)
    cond, ctx = torch.randn(2, 16, 2, 2, generator=g), torch.randn(2, 16, 32, generator=g)

    def roll(**kw):
        return causal_rollout(m, cond, 2, generator=torch.Generator().manual_seed(0), steps=(1.0, 0.5), **kw)

    with torch.no_grad():
        base = roll()
        assert not torch.allclose(roll(context=ctx), base)
        torch.testing.assert_close(roll(context=ctx), roll(context=ctx))  # re-noising follows the generator
        torch.testing.assert_close(roll(context=torch.zeros(2, 16, 32)), base)
        t_plain = teacher_sample(m, cond, 2, 2, cfg_scale=2.0, generator=torch.Generator().manual_seed(0))
        t_text = teacher_sample(m, cond, 2, 2, cfg_scale=2.0, generator=torch.Generator().manual_seed(0), context=ctx)
        assert not torch.allclose(t_plain, t_text)
        dit = VideoDiT(DiTConfig(channels=3, height=8, width=8, patch=4, dim=32, depth=1, heads=2, chunk=2)).eval()
        x, t = torch.randn(1, 3, 3, 8, 8), torch.rand(1, 3)
        torch.testing.assert_close(dit(x, t, context=ctx[:1]), dit(x, t))


def test_caption_context_policy(tiny_cfg, tmp_path, capsys):
    m = tiny_model(height=2, width=2)
    caps = ["a cat sits", None]
    ctx, rec = caption_context(tiny_cfg("model=wan_tiny"), m, caps)
    assert ctx is None and rec == {"prompts": "empty (model.encoders.text not set)"}
    assert "sampling with the empty prompt" in capsys.readouterr().out
    with pytest.raises(ValueError, match="captions but model.encoders.text is not set"):
        caption_context(tiny_cfg("model=wan_tiny", "sample.text=required"), m, caps)
    with pytest.raises(ValueError, match=r"sample.text='always': one of auto, required, empty"):
        caption_context(tiny_cfg("model=wan_tiny", "sample.text=always"), m, caps)
    base = tiny_text_encoder(tmp_path / "wan")
    ctx, rec = caption_context(tiny_cfg("model=wan_tiny", f"model.encoders.text={base}"), m, caps)
    assert ctx.shape == (2, 16, 32) and rec["prompts"] == "captions"
    assert (ctx[0, :3] != 0).any() and (ctx[1, 1:] == 0).all()  # "" = end-of-sequence token only
    assert caption_context(tiny_cfg(), VideoDiT(DiTConfig()), caps) == (None, {})  # toy DiT: no text input


@pytest.fixture
def finished_run(tmp_path):
    """A minimal finished run folder with one video set (no training needed for the error paths)."""
    run = tmp_path / "runs" / "distill-x"
    (run / "videos" / "train_len" / "images").mkdir(parents=True)
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(run / "videos/train_len/images/a.png")
    (run / "videos/train_len/index.json").write_text(json.dumps(
        {"set": "train_len", "fps": 8, "videos": {"a-0.mp4": {"image": "images/a.png", "seed": 3, "frames": 9,
                                                              "caption": "a cat sits"}}}))
    (run / "results.json").write_text(json.dumps({"status": "finished", "seed": 0}))
    return run


@pytest.mark.parametrize("extra, message", [
    ([], "public.checkpoint.path is not set: set public.checkpoint.path=<generator checkpoint> or the environment "
         "variable SELF_FORCING_CKPT"),
    (["public.checkpoint.path=/nonexistent.pt"], "public.checkpoint.path=/nonexistent.pt does not exist"),
    (["public.checkpoint.path=CKPT", "model=wan_1_3b"], "model.vae.path is not set: set public.base=<diffusers Wan "
                                                        "folder with vae/> or the environment variable WAN_1_3B"),
    (["public.checkpoint.path=CKPT", "model=dit_tiny"], "public models are Wan checkpoints: model.arch='dit'"),
    (["public.checkpoint.path=CKPT", "public.sampler.cfg=3.0"], "public.sampler.cfg=3.0: the causal sampler has no"),
    (["public.checkpoint.path=CKPT"], "these videos have captions but model.encoders.text is not set"),
    (["public.checkpoint.path=CKPT", "public.sampler.text=empty", "trainer.device=cuda"],
     "trainer.device=cuda but no CUDA device is visible"),
    (["public.checkpoint.path=CKPT", "--sets", "long"], r"public.sets=\['long'\]: .* has the sets \['train_len'\]"),
])
def test_public_errors_are_one_line_before_any_work(finished_run, tmp_path, capsys, monkeypatch, extra, message):
    if "trainer.device=cuda" in extra and torch.cuda.is_available():
        pytest.skip("a GPU is present")
    for var in ("SELF_FORCING_CKPT", "WAN_1_3B"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "ckpt.pt").write_bytes(b"")
    extra = [e.replace("CKPT", str(tmp_path / "ckpt.pt")) for e in extra]
    shape = [] if any(e.startswith("model=") for e in extra) else TINY
    assert _sample("self_forcing_dmd", "--like", str(finished_run), *shape, f"paths.out={tmp_path}", *extra) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("aad-bench sample: error:")
    assert re.search(message, err), err
    assert not list(finished_run.parent.glob("public-*"))  # no run folder was started


def test_public_name_and_source_errors(finished_run, tmp_path, capsys, monkeypatch):
    assert _sample("self_forcing", "--like", str(finished_run)) == 2
    assert "unknown public model 'self_forcing'. Did you mean 'self_forcing_dmd'?" in capsys.readouterr().err
    monkeypatch.setenv("LONGLIVE_CKPT", str(finished_run / "results.json"))
    monkeypatch.delenv("LONGLIVE_LORA", raising=False)
    assert _sample("longlive", "--like", str(finished_run), *TINY) == 2
    assert "public.checkpoint.lora is not set: set public.checkpoint.lora=<LoRA file> or the environment variable " \
           "LONGLIVE_LORA" in capsys.readouterr().err
    assert _sample("causvid", "--like", str(tmp_path), *TINY, f"public.checkpoint.path={finished_run}") == 2
    assert "not a run folder with videos/<set>/index.json" in capsys.readouterr().err
    monkeypatch.delenv("SELF_FORCING_CKPT", raising=False)
    with pytest.raises(SystemExit) as e:  # the Hydra form: the same line, exit 2
        main(["task=public", "+public=self_forcing_dmd", f"public.like={finished_run}", *TINY, f"paths.out={tmp_path}"])
    assert e.value.code == 2
    assert "aad-bench: error: public.checkpoint.path is not set" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: one of --like / --images is required
        _sample("causvid")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_sample_and_public_share_trainer_device(finished_run, tiny_cfg, tmp_path, capsys):
    """`aad-bench sample RUN` and the public sampler read the same setting: trainer.device (auto | cpu | cuda)."""
    from omegaconf import OmegaConf

    (finished_run / "config.yaml").write_text(OmegaConf.to_yaml(tiny_cfg("task=distill")))
    assert main(["sample", str(finished_run), "trainer.device=cuda"]) == 1
    assert "trainer.device=cuda but no CUDA device is visible" in capsys.readouterr().err
    assert compose_public("causvid", ["public.like=x"]).trainer.device == "auto"


def test_resampling_a_folder_skips_public_runs(tmp_path, capsys):
    pub = tmp_path / "runs" / "public-causvid-x"
    pub.mkdir(parents=True)
    (pub / "results.json").write_text(json.dumps({"status": "finished", "task": "public", "method": "causvid"}))
    (pub / "config.yaml").write_text("task: public\n")
    assert main(["sample", str(tmp_path / "runs")]) == 0
    assert "a public checkpoint's run; sample it with `aad-bench sample --public causvid" in capsys.readouterr().out
