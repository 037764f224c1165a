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
