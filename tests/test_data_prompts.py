"""data=prompts lists, VBench-I2V-style image folders, conditioning images, teacher ODE pairs in shards."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from aad_bench.data import SOURCES
from aad_bench.data.decode import load_image
from aad_bench.data.ode_pairs import build_ode_pairs, load_ode_pairs
from aad_bench.data.prompts import read_i2v_folder, read_prompts


def test_prompt_lists(tmp_path):
    (tmp_path / "p.txt").write_text("a cat sits\n\n a red ball moves left \n")
    items = read_prompts(tmp_path / "p.txt")
    assert [i.prompt for i in items] == ["a cat sits", "a red ball moves left"] and items[0].image is None
    Image.new("RGB", (8, 8)).save(tmp_path / "img.png")
    (tmp_path / "p.jsonl").write_text(json.dumps({"prompt": "x", "image": "img.png"}) + "\n")
    assert read_prompts(tmp_path / "p.jsonl")[0].image == (tmp_path / "img.png").resolve()
    (tmp_path / "p.csv").write_text("caption,image\nhello,missing.png\n")
    with pytest.raises(ValueError, match="entry 1: image .*missing.png does not exist"):
        read_prompts(tmp_path / "p.csv")
    (tmp_path / "q.jsonl").write_text(json.dumps({"image": "img.png"}) + "\n")
    with pytest.raises(ValueError, match="entry 1 has no prompt"):
        read_prompts(tmp_path / "q.jsonl")
    assert SOURCES.get("prompts") is read_prompts
    with pytest.raises(KeyError, match="did you mean|Did you mean"):
        SOURCES.get("prompt")


def test_vbench_i2v_folder_and_images(tmp_path):
    img = np.zeros((40, 80, 3), np.uint8)
    img[:, 30:50] = 255  # a centred stripe
    Image.fromarray(img).save(tmp_path / "a dog running on the beach.png")
    Image.fromarray(img).save(tmp_path / "camera pans left.jpg")
    items = read_i2v_folder(tmp_path)
    assert [i.prompt for i in items] == ["a dog running on the beach", "camera pans left"]
    im = load_image(items[0].image, 16, 16)
    assert im.shape == (16, 16, 3) and im[:, 8].mean() > 200 and im[:, 0].mean() < 50
    (tmp_path / "info.json").write_text(json.dumps([{"image_name": "camera pans left.jpg", "prompt_en": "pan"}]))
    assert [(i.id, i.prompt) for i in read_i2v_folder(tmp_path)] == [("camera pans left", "pan")]


def test_ode_pairs_resume(tmp_path):
    calls = []

    def make_pairs(items):
        calls.append(list(items))
        if len(calls) == 2 and not (tmp_path / "again").exists():
            raise KeyboardInterrupt
        x = torch.tensor(items, dtype=torch.float32)[:, None]
        return {"x": x, "target": 2 * x}

    with pytest.raises(KeyboardInterrupt):
        build_ode_pairs(list(range(5)), make_pairs, tmp_path / "pairs", {"teacher": "t"}, shard_size=2, progress=False)
    (tmp_path / "again").mkdir()
    calls.clear()
    build_ode_pairs(list(range(5)), make_pairs, tmp_path / "pairs", {"teacher": "t"}, shard_size=2, progress=False)
    assert calls == [[2, 3], [4]]
    pairs = load_ode_pairs(tmp_path / "pairs")
    torch.testing.assert_close(pairs["target"], 2 * torch.arange(5.0)[:, None])


# -- data=prompts trains the data-free stages (tiny Wan + tiny umT5) --------------------------------------------

PROMPTS = ["a red ball moves left", "a cat sits", "a red cat sits"]


def _prompt_file(folder):
    """Two prompts with a conditioning image, one without."""
    folder.mkdir()
    for i, color in enumerate([(200, 40, 40), (40, 40, 200)]):
        img = np.full((48, 40, 3), 60, np.uint8)
        img[10:26, 8:24] = color
        Image.fromarray(img).save(folder / f"im{i}.png")
    rows = [{"prompt": PROMPTS[0], "image": "im0.png"}, {"prompt": PROMPTS[1]},
            {"prompt": PROMPTS[2], "image": "im1.png"}]
    (folder / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder / "p.jsonl"


def _prompt_args(path, *more):
    return ["task=distill", "model=wan_tiny", "codec=wan_vae", "data=prompts", f"data.path={path}", "data.frames=9",
            "data.height=32", "data.width=32", "model.height=4", "model.width=4", "distill.share_stages=false", *more]


def test_dmd_trains_and_samples_on_prompts_alone(tiny_cfg, tmp_path, monkeypatch):
    from wan_helpers import spy_wan_context, tiny_model, tiny_text_encoder

    from aad_bench.models.encoders import TextEncoder
    from aad_bench.models.wan.checkpoints import save_diffusers
    from aad_bench.tasks import distill as distill_task

    enc_dir, wan = tiny_text_encoder(tmp_path / "umt5"), tmp_path / "wan"
    save_diffusers(tiny_model(seed=3).net, wan)  # the given teacher (prompts cannot train one)
    cfg = tiny_cfg(*_prompt_args(_prompt_file(tmp_path / "prompts"), "method=dmd", f"+model.checkpoint.path={wan}",
                                 f"model.encoders.text={enc_dir}", "method.dmd.early_stop.criterion=motion"))
    calls = spy_wan_context(monkeypatch, ("ode_stage", "dmd_stage"))

    res = distill_task.run(cfg)
    assert res["status"] == "finished", res.get("reason")
    stages = res["summary"]["stages"]
    assert list(stages) == ["ode", "dmd"] and stages["dmd"]["motion"][0][0] == 0  # probes: reference = step 0
    assert res["summary"]["speed_ratio"] is None and res["summary"]["speed"] >= 0  # no data clips to compare with
    embs = TextEncoder(str(enc_dir), None, 16).encode(PROMPTS)
    for s in ("ode", "dmd"):
        mine = [c for c in calls if c[0] == s]
        assert mine and all(c[3] is not None and c[3].shape == (c[2], 16, 32) for c in mine), s
        rows = torch.cat([c[3] for c in mine])
        assert ((rows[:, None] - embs[None]).abs().flatten(2).amax(-1) < 1e-5).any(1).all(), s
    index = json.loads(open(f"{res['run_dir']}/videos/train_len/index.json").read())
    entries = list(index["videos"].values())
    assert [e["caption"] for e in entries] == PROMPTS[:2] and entries[0]["frames"] == 9


def test_prompts_refuse_what_needs_clips(tiny_cfg, tmp_path):
    from aad_bench.tasks import distill as distill_task
    from aad_bench.tasks import teacher as teacher_task

    path = _prompt_file(tmp_path / "prompts")
    given = f"+model.checkpoint.path={tmp_path / 'nowhere'}"
    with pytest.raises(ValueError, match=r"^method=aad1 needs real clips for Stage III \(gan\): data=prompts has "
                                         r"none; use data=folder"):
        distill_task.run(tiny_cfg(*_prompt_args(path, "method=aad1", given)))
    with pytest.raises(ValueError, match="^task=teacher needs real clips to train a teacher: data=prompts has none"):
        teacher_task.run(tiny_cfg(*_prompt_args(path, "task=teacher", given)))
    with pytest.raises(ValueError, match="^method.dmd.early_stop.reference=data needs the data's motion"):
        distill_task.run(tiny_cfg(*_prompt_args(path, "method=dmd", given, "method.dmd.early_stop.criterion=motion",
                                                "method.dmd.early_stop.reference=data")))
    with pytest.raises(ValueError, match=r"^data=prompts cannot train a teacher \(no clips\): set data.teacher .* or "
                                         r"model.checkpoint.path$"):
        distill_task.run(tiny_cfg(*_prompt_args(path, "method=dmd")))
    with pytest.raises(ValueError, match="^data.teacher=.*nowhere: not a finished teacher folder"):
        distill_task.run(tiny_cfg(*_prompt_args(path, "method=dmd", f"data.teacher={tmp_path / 'nowhere'}")))
    assert not (tmp_path / "runs").exists()  # all refused before any work


def test_prompt_conditions_and_a_teacher_folder(tiny_cfg, tmp_path):
    from wan_helpers import tiny_model

    from aad_bench.data.sources import eval_conditions, training_data
    from aad_bench.runfolder import RunFolder
    from aad_bench.training.checkpoint import save_checkpoint
    from aad_bench.training.teacher import get_teacher

    path = _prompt_file(tmp_path / "prompts")
    teacher = tiny_model(seed=5)  # a finished teacher folder, as a data=folder run leaves it in the cache
    run = RunFolder(tmp_path / "teacher")
    run.start("{}", {"task": "teacher"})
    save_checkpoint(run.checkpoints, "teacher", 3, {"ema": teacher.state_dict()})
    run.finish("finished", stage="teacher", step=3)
    cfg = tiny_cfg(*_prompt_args(path, "method=dmd", f"data.teacher={run.path}"))
    data = training_data(cfg)
    assert data.shape == (3, 3, 16, 4, 4) and not data.has_clips  # 9 pixel frames = 3 latent frames
    clips, _ = data.batch(4, torch.Generator().manual_seed(0))
    assert clips.shape == (4, 1, 16, 4, 4)  # batches carry the conditioning frame only
    with pytest.raises(ValueError, match="^Stage III \\(gan\\) needs real clips: data=prompts"):
        data.require_clips("Stage III (gan)")
    stems, cond, metas = eval_conditions(cfg, "eval", 4)
    assert [m["caption"] for m in metas] == [*PROMPTS, PROMPTS[0]] and cond.shape == (4, 16, 4, 4)
    torch.testing.assert_close(cond[3], cond[0])  # cycled, encoded once
    grey = tiny_cfg("size=tiny", "data=prompts", f"data.path={path}", "data.height=16", "data.width=16")
    _, px, _ = eval_conditions(grey, "eval", 3)  # identity codec: the latents are the pixels
    assert px[1].abs().max() < 0.01 and px[0].abs().max() > 0.5  # no image: a mid-grey frame; an image: itself
    model, folder = get_teacher(cfg, data)
    assert folder.path == run.path
    for a, b in zip(model.state_dict().values(), teacher.state_dict().values()):
        torch.testing.assert_close(a, b)
