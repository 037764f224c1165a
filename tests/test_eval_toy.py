"""One motion measure everywhere: the demo table's ``world.motion.motion_summary``, eval's ``toy_*`` metrics and
``aad-bench diagnose`` read the same speeds and frozen share on the same toy set."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aad_bench.evaluation.cli import diagnose_main, eval_main
from aad_bench.utils.io import read_json
from aad_bench.video.io import read_video
from aad_bench.video.sets import VideoSetWriter
from aad_bench.world.motion import motion_summary
from aad_bench.world.toy import ToyWorldConfig, render_clip

TOY = "toy_speed_ratio,toy_frozen_share,toy_trajectory_error"


def _speckle(clip: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Grain and blocky speckles: what a collapsed student's output looks like."""
    t, h, w, _ = clip.shape
    blocks = rng.normal(0, 30, (t, h // 4, w // 4, 3)) * (rng.random((t, h // 4, w // 4, 1)) < 0.3)
    noise = blocks.repeat(4, 1).repeat(4, 2) + rng.normal(0, 6, clip.shape)
    return np.clip(clip.astype(np.float32) + noise, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    """A run folder whose set mixes data-like clips, frozen speckled copies, a slow and a static data twin."""
    run = tmp_path_factory.mktemp("toy") / "run"
    w = VideoSetWriter(run / "videos" / "train_len", fps=8)
    rng = np.random.default_rng(0)
    cfg = ToyWorldConfig()
    for i in (0, 1, 2, 3, 4, 5):  # 0 slow, 3 static, the rest moving
        clip, gt = render_clip(cfg, "eval", i)
        frozen = i in (2, 4)
        video = _speckle(np.repeat(clip[:1], len(clip), 0), rng) if frozen else clip
        w.add(f"toy_{i:05d}-0.mp4", video, {"seed": i, "gt": gt}, image=clip[0])
    return run


def test_eval_toy_metrics_diagnose_and_the_table_agree(toy_run, capsys):
    assert eval_main([str(toy_run), "--metrics", TOY]) == 0  # a static data twin is skipped, not an error
    d = toy_run / "eval" / "train_len"
    ratio = read_json(d / "toy_speed_ratio@sprites.json")
    frozen = read_json(d / "toy_frozen_share@sprites.json")
    assert "errors" not in ratio and set(ratio["skipped"]) == {"toy_00003-0.mp4"}

    index = read_json(toy_run / "videos" / "train_len" / "index.json")["videos"]
    names = sorted(index)
    clips = [read_video(toy_run / "videos" / "train_len" / n)[0] for n in names]
    table = motion_summary(clips, [index[n]["gt"] for n in names])  # what the demo prints

    eval_speeds = [ratio["details"][n]["speed"] for n in names]
    np.testing.assert_allclose(eval_speeds, table["speeds"], atol=1e-3)
    assert ratio["aggregate"] == pytest.approx(table["speed_ratio"], abs=1e-3)
    assert frozen["aggregate"] == pytest.approx(table["frozen_share"]) == pytest.approx(2 / 5)

    assert diagnose_main([str(toy_run)]) == 0
    rows = pd.read_csv(toy_run / "diagnosis.csv").set_index("video").loc[names]
    np.testing.assert_allclose(rows["speed"].to_numpy(float), table["speeds"], atol=1e-3)
    assert rows["collapsed"].tolist() == [False, False, True, False, True, False]  # frozen copies only
    assert "2 of 5 frozen" in capsys.readouterr().out


def test_frozen_copies_are_frozen_and_data_matches_itself(toy_run):
    d = toy_run / "eval" / "train_len"
    ratio = read_json(d / "toy_speed_ratio@sprites.json")["per_video"]
    assert ratio["toy_00005-0.mp4"] == pytest.approx(1.0, abs=0.05)  # the data clip reads its own speed
    assert ratio["toy_00002-0.mp4"] < 0.1  # a speckled frozen copy does not move
    err = read_json(d / "toy_trajectory_error@sprites.json")["per_video"]
    assert err["toy_00005-0.mp4"] < 0.02 and err["toy_00002-0.mp4"] > 0.1
