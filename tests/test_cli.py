"""The command line: bad settings give a clear error before any work, never a traceback from deep inside."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def _run(*args: str, tmp) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aad_bench.cli", *args, f"paths.out={tmp}", "progress=false"],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args,needle", [
    (["task=distill", "size=tiny", "model.chunk=3"], "model.chunk=3 must divide the generated frame count 8"),
    (["task=distill", "size=tiny", "model.window_frames=1"], "model.window_frames=1 is smaller than a chunk"),
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
    assert out.stdout.startswith("18 job(s)") and "nothing launched" in out.stdout
    assert out.stdout.count("method=aad1 seed=") == 3
    assert not tmp_path.exists() or not any(tmp_path.iterdir())  # nothing written
    out = _run("-m", "+ablation=disc_2x2", "method=aad1,patch", "seed=7", "--dry-run", tmp=tmp_path)
    assert out.stdout.startswith("2 job(s)")  # the command line overrides the file's sweep


def test_unknown_verb_target_is_a_clear_error(tmp_path):
    out = subprocess.run([sys.executable, "-m", "aad_bench.cli", "eval", str(tmp_path / "nope")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "nope" in out.stderr and "Traceback" not in out.stderr


BAD_SETTINGS = [("method.gan.steps=-3", "method.gan.steps=-3: must be an integer >= 1"),
                ("method.gan.batch=0", "method.gan.batch=0: must be an integer >= 1"),
                ("method.gan.steps=abc", "method.gan.steps='abc': must be an integer >= 1"),
                ("distill.ckpt_every=0", "distill.ckpt_every=0: must be an integer >= 1"),
                ("sample.n_videos=0", "sample.n_videos=0: must be an integer >= 1"),
                ("paths.out=/dev/null/x", "paths.out='/dev/null/x': cannot be created: /dev/null is not a folder"),
                ("method.gan.lr_gen=-1", "method.gan.lr_gen=-1: must be a number > 0"),
                ("method.dmd.grad_chunks=0", "method.dmd.grad_chunks=0: must be all, last or an integer >= 1")]


@pytest.mark.parametrize("override,message", BAD_SETTINGS)
def test_schema_names_the_bad_setting(override, message):
    from aad_bench.config import compose
    from aad_bench.schema import ConfigError, check_config

    with pytest.raises(ConfigError) as e:
        check_config(compose(["task=distill", "size=tiny", override]))
    assert str(e.value).startswith(message)


def test_every_shipped_config_passes_the_schema():
    from aad_bench.config import compose
    from aad_bench.schema import problems
    from aad_bench.sweep import expand_jobs, group_options

    options = group_options()
    jobs = [[f"{g}={o}"] for g, opts in options.items() if g != "ablation" for o in opts]
    jobs += [job for a in options["ablation"] for job in expand_jobs([f"+ablation={a}"])]
    bad = {" ".join(job): p for job in jobs if (p := problems(compose(job)))}
    assert not bad


@pytest.mark.parametrize("override", ["method.gan.steps=abc", "paths.out=/dev/null/x", "distill.ckpt_every=0"])
def test_bad_setting_fails_before_any_work(tmp_path, override):
    out = subprocess.run([sys.executable, "-m", "aad_bench.cli", "task=distill", "size=tiny", "progress=false",
                          f"paths.out={tmp_path / 'out'}", override], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr[-2000:]
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"aad-bench: error: {override.split('=')[0]}"), lines
    assert not (tmp_path / "out").exists()  # not even Hydra's output folder


def test_bad_job_in_a_plain_multirun_is_a_failed_record_and_the_sweep_goes_on(tmp_path):
    out = subprocess.run([sys.executable, "-m", "aad_bench.cli", "-m", "task=teacher", "size=tiny",
                          "teacher.steps=2,-3,4", "progress=false", f"paths.out={tmp_path}"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 1, out.stderr[-3000:]
    assert "Traceback" not in out.stderr
    errors = [ln for ln in out.stderr.splitlines() if ln.startswith("aad-bench: error:")]
    assert len(errors) == 1 and "job 1 (" in errors[0] and "teacher.steps=-3: must be an integer >= 1" in errors[0]
    results = {}
    for f in (tmp_path / "runs").glob("*/results.json"):
        res = json.loads(f.read_text())
        results[next(o for o in res["overrides"] if o.startswith("teacher.steps="))] = res
    assert results["teacher.steps=2"]["status"] == results["teacher.steps=4"]["status"] == "finished"
    failed = results["teacher.steps=-3"]
    assert failed["status"] == "failed" and "teacher.steps=-3" in failed["reason"]


@pytest.mark.parametrize("overrides,stage", [
    (["distill.explode_grad=1e-12"], "ode"),
    (["method.gan.diverge.pinned_acc=0.0", "method.gan.diverge.pinned_steps=1"], "gan"),
])
def test_divergence_steps_are_1_based(tiny_cfg, overrides, stage):
    from aad_bench.tasks import distill as distill_task

    cfg = tiny_cfg("task=distill", "method=aad1", "distill.share_stages=false", *overrides)
    res = distill_task.run(cfg)
    assert res["status"] == "diverged" and res["stage"] == stage
    assert res["step"] == 1  # the first step of the stage, as metrics.jsonl would number it
    on_disk = json.loads((Path(res["run_dir"]) / "results.json").read_text())
    assert on_disk["step"] == 1 and on_disk["stage"] == stage


def _newest_checkpoint(run_dir: str | Path) -> Path:
    return sorted((Path(run_dir) / "checkpoints").glob("*.pt"))[-1]


def test_sample_dir_goes_on_past_unfinished_and_broken_runs(tiny_cfg, capsys):
    from aad_bench.cli import main
    from aad_bench.tasks import distill as distill_task

    ok = distill_task.run(tiny_cfg("task=distill", "method=dmd", "distill.share_stages=false"))
    div = distill_task.run(tiny_cfg("task=distill", "method=dmd", "distill.share_stages=false",
                                    "distill.explode_grad=1e-12"))
    assert ok["status"] == "finished" and div["status"] == "diverged"
    runs = Path(ok["run_dir"]).parent
    broken = runs / "a-broken-copy"  # sorts first: the command must not stop there
    shutil.copytree(ok["run_dir"], broken)
    final = _newest_checkpoint(broken)
    final.write_bytes(final.read_bytes()[:100])  # a truncated final checkpoint (the previous one is intact)
    capsys.readouterr()
    assert main(["sample", str(runs)]) == 1
    out = capsys.readouterr()
    assert f"skipped {div['run_dir']}: status is 'diverged'" in out.out
    assert f"aad-bench sample: error: {final}: corrupt checkpoint" in out.err
    assert "sampled 1 run(s), skipped 1 not finished, 1 failed" in out.out
    assert main(["sample", str(broken)]) == 1  # the broken run alone: an error naming the file, never older weights
    assert str(final) in capsys.readouterr().err
    assert main(["sample", div["run_dir"]]) == 2  # a named run that did not finish


def test_corrupt_cached_teacher_is_an_error_naming_it(tiny_cfg):
    from aad_bench.data.toy import training_data
    from aad_bench.training.checkpoint import CheckpointError
    from aad_bench.training.teacher import get_teacher

    cfg = tiny_cfg("task=teacher")
    _, run = get_teacher(cfg, training_data(cfg), progress=False)
    final = _newest_checkpoint(run.path)
    assert len(list(final.parent.glob("*.pt"))) == 2  # an earlier teacher is there to fall back to: it must not
    final.write_bytes(b"\0" * 64)
    with pytest.raises(CheckpointError, match=f"{final}: corrupt checkpoint"):
        get_teacher(cfg, training_data(cfg), progress=False)
    final.unlink()
    with pytest.raises(CheckpointError, match="newest checkpoint is from step 3, not the finished run's last step 6"):
        get_teacher(cfg, training_data(cfg), progress=False)
