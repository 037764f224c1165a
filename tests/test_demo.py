"""The embedded default (`aad-bench` = task=demo) end to end on size=tiny: every arm finishes, the printed table's
values stay in their ranges, the students are not frozen copies of frame 0, and the report is written."""

import json
import math
import subprocess
import sys

import numpy as np

from aad_bench.video.io import read_video
from aad_bench.world.motion import V_MAX


def test_demo_table_in_range(tmp_path):
    p = subprocess.run([sys.executable, "-m", "aad_bench.cli", "size=tiny", f"paths.out={tmp_path}",
                        "progress=false"], capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    rows = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert [r["method"] for r in rows] == ["teacher", "dmd", "aad1", "symmetric"]
    for r in rows:
        assert r["status"] == "finished", r
        assert 0.0 <= r["speed ratio"] <= 2 * V_MAX and 0.0 <= r["frozen"] <= 1.0, r
        assert r["s/video"] > 0 and math.isfinite(r["speed-up vs teacher"]), r
        # the motion columns are `aad-bench eval`'s scores of the mp4s (by the current measure, also for reused runs)
        scored = json.loads((tmp_path / "runs" / r["run"] / "eval" / "train_len" / "toy_speed_ratio@sprites.json")
                            .read_text())["aggregate"]
        assert r["speed ratio"] == scored, r
        # ... and the same images over 8 noise draws (mean ± s.e.), draw 0 being the written videos
        d = r["draws"]
        assert d["n"] == 8 and len(set(d["seeds"])) == 8 and 0.0 <= d["speed_ratio"] <= 2 * V_MAX, d
        assert d["speed_ratio_se"] >= 0 and r["noise draws: speed ratio / frozen"].endswith("(8)"), r
        if r["method"] != "teacher":  # students: one step per chunk, and long rollouts
            assert r["NFE/clip"] == 4 and r["long speed ratio"] is not None, r  # tiny: 8 frames = 4 chunks of 2
            # directionally: a student's frames are not frame 0 copied (what a collapsed student would write)
            videos = sorted((tmp_path / "runs" / r["run"] / "videos" / "train_len").glob("*.mp4"))
            assert videos, r
            for v in videos:
                frames = read_video(v)[0].astype(np.float32)
                assert np.abs(frames[1:] - frames[:1]).mean() > 1.0, v
    assert (tmp_path / "demo" / "summary.md").read_text().count("\n") == len(rows) + 2
    assert (tmp_path / "demo" / "report" / "index.html").exists()
    assert "speed ratio" in p.stdout and "report:" in p.stdout
