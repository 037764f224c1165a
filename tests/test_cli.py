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


def test_unknown_config_group_option_gets_did_you_mean(tmp_path):
    out = _run("method=aad2", tmp=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "unknown method 'aad2'. Did you mean 'aad1'?" in out.stderr
    assert "method_base" not in out.stderr and "common" not in out.stderr  # no internal names among the options
    out = _run("-m", "method=aad1,symetric", tmp=tmp_path)  # every value of a sweep is checked
    assert out.returncode == 2 and "Did you mean 'symmetric'?" in out.stderr


def test_help_lists_verbs_and_config_groups():
    out = subprocess.run([sys.executable, "-m", "aad_bench.cli", "--help"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0
    for verb in ("sample", "eval", "diagnose", "report", "campaign", "train"):
        assert f"\n  {verb} " in out.stdout
    for group in ("method", "ablation", "model", "world", "slurm"):
        assert f"\n  {group} " in out.stdout
    assert "aad1" in out.stdout and "disc_2x2" in out.stdout


def test_dry_run_lists_a_sweep_without_launching(tmp_path):
    out = _run("-m", "+ablation=disc_2x2", "--dry-run", tmp=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("15 job(s)") and "nothing launched" in out.stdout
    assert out.stdout.count("method=aad1 seed=") == 3
    assert not tmp_path.exists() or not any(tmp_path.iterdir())  # nothing written
    out = _run("-m", "+ablation=disc_2x2", "method=aad1,patch", "seed=7", "--dry-run", tmp=tmp_path)
    assert out.stdout.startswith("2 job(s)")  # the command line overrides the file's sweep


def test_unknown_verb_target_is_a_clear_error(tmp_path):
    out = subprocess.run([sys.executable, "-m", "aad_bench.cli", "eval", str(tmp_path / "nope")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "nope" in out.stderr and "Traceback" not in out.stderr
