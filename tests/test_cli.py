"""The command line: bad settings give a clear error before any work, never a traceback from deep inside."""

import subprocess
import sys

import pytest


def _run(*args: str, tmp) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aad_bench.cli", *args, f"paths.out={tmp}", "progress=false"],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args,needle", [
    (["task=distill", "size=tiny", "model.chunk=3"], "model.chunk=3 must divide the generated frame count 8"),
    (["task=distill", "size=tiny", "model.window_frames=2"], "model.window_frames=2 is smaller than a chunk"),
    (["task=distill", "size=tiny", "method.dmd.ratio=0"], "method.dmd.ratio"),
    (["task=distil", "size=tiny"], "unknown task 'distil'. Did you mean 'distill'?"),
    (["task=distill", "size=tiny", "world.static_share=2"], "static_share"),
])
def test_bad_settings_fail_with_one_line(tmp_path, args, needle):
    out = _run(*args, tmp=tmp_path)
    assert out.returncode == 2
    assert needle in out.stderr
    assert "Traceback" not in out.stderr
    assert not list(tmp_path.rglob("*.pt"))  # nothing was trained


def test_unknown_config_group_option_lists_the_options(tmp_path):
    out = _run("method=aad", tmp=tmp_path)
    assert out.returncode != 0
    assert "method/aad" in out.stderr and "aad1" in out.stderr and "Traceback" not in out.stderr


def test_unknown_verb_target_is_a_clear_error(tmp_path):
    out = subprocess.run([sys.executable, "-m", "aad_bench.cli", "eval", str(tmp_path / "nope")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "nope" in out.stderr and "Traceback" not in out.stderr
