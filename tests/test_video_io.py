"""mp4s the project writes read back with decord: frame count, fps, pixels within codec error."""

import numpy as np
import pytest

from aad_bench.video.io import Mp4Writer, VideoReadError, read_video, video_info, write_mp4
from aad_bench.world.toy import ToyWorldConfig, render_clip


@pytest.mark.parametrize("size", [(32, 32), (16, 24)])
def test_round_trip(tmp_path, size):
    frames, _ = render_clip(ToyWorldConfig(height=size[0], width=size[1], radius=(2, 3)), "eval", 0)
    path = write_mp4(tmp_path / "a.mp4", frames, fps=8)
    back, fps = read_video(path)
    assert back.shape == frames.shape and fps == pytest.approx(8.0)
    err = np.abs(back.astype(int) - frames.astype(int))
    assert err.mean() < 2.0 and np.percentile(err, 99) < 12
    assert video_info(path) == {"frames": 17, "fps": 8.0, "height": size[0], "width": size[1]}


def test_streamed_writer_appears_only_when_closed(tmp_path):
    w = Mp4Writer(tmp_path / "s.mp4", fps=4)
    for _ in range(3):
        w.write(np.full((2, 8, 8, 3), 120, np.uint8))
    assert not (tmp_path / "s.mp4").exists()
    w.close()
    assert read_video(tmp_path / "s.mp4")[0].shape == (6, 8, 8, 3)


def test_fps_resampling_and_bad_files(tmp_path):
    frames = np.random.default_rng(0).integers(0, 255, (16, 16, 16, 3), dtype=np.uint8)
    path = write_mp4(tmp_path / "v.mp4", frames, fps=16)
    sub, fps = read_video(path, fps=8)
    assert len(sub) == 8 and fps == 8
    (tmp_path / "bad.mp4").write_bytes(path.read_bytes()[:300])
    with pytest.raises(VideoReadError, match="bad.mp4"):
        read_video(tmp_path / "bad.mp4")
    with pytest.raises(VideoReadError, match="no such video"):
        read_video(tmp_path / "missing.mp4")
    with pytest.raises(ValueError, match="uint8"):
        write_mp4(tmp_path / "f.mp4", frames.astype(np.float32), fps=8)
