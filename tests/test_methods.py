"""Every registered method trains 2 steps of each of its stages on a tiny config and samples videos."""

import json

import pytest
import torch

from aad_bench.methods import METHODS, MethodSpec
from aad_bench.registry import UnknownNameError
from aad_bench.runfolder import RunFolder
from aad_bench.tasks import distill as distill_task
from aad_bench.training.checkpoint import load_latest
from aad_bench.video.io import read_video


@pytest.mark.parametrize("name", METHODS.names())
def test_method_trains_and_samples(name, tiny_cfg):
    cfg = tiny_cfg(f"method={name}", "task=distill", "distill.share_stages=false")
    res = distill_task.run(cfg)
    assert res["status"] == "finished", res.get("reason")
    run = res["run_name"]
    folder = cfg.paths.runs + "/" + run
    spec = MethodSpec.from_cfg(cfg.method)
    logged = {}
    for row in RunFolder(folder).metrics():
        logged.setdefault(row["stage"], []).append(row["step"])
    for stage in spec.stages:  # 2 steps of each stage, in order
        assert max(logged[stage]) == 2
    assert list(logged) == [s for s in ("ode", "dmd", "gan") if s in spec.stages]
    frames, _ = read_video(f"{folder}/videos/train_len/toy_eval_00000-0.mp4")
    assert frames.shape == (cfg.world.frames, 16, 16, 3)
    if spec.stages:
        long, _ = read_video(f"{folder}/videos/long/toy_long_00000-0.mp4")
        assert len(long) == 1 + cfg.sample.long_factor * (cfg.world.frames - 1)
        assert res["summary"]["nfe"] == (cfg.world.frames - 1) // cfg.model.chunk
    if "gan" in spec.stages:
        assert res["disc"] == spec.disc
        assert res["method_info"] == spec.info()
        state = load_latest(folder + "/checkpoints")
        assert state["stages_done"] == list(spec.stages)


def test_dmd_early_stopping_is_recorded(tiny_cfg):
    cfg = tiny_cfg("method=dmd", "task=distill", "method.dmd.steps=4", "method.dmd.early_stop.threshold=100",
                   "method.dmd.early_stop.criterion=motion", "method.dmd.early_stop.reference=data",
                   "distill.share_stages=false")
    res = distill_task.run(cfg)
    info = res["summary"]["stages"]["dmd"]
    assert info["stopped_early"] and info["steps"] == 1 and "motion ratio" in info["stop_reason"]


def test_early_stop_rule_relative_to_stage_start():
    from omegaconf import OmegaConf

    from aad_bench.training.dmd import early_stop_reason

    es = OmegaConf.create({"criterion": "motion", "reference": "start", "threshold": 0.5})
    assert early_stop_reason(es, 10, 0.6, 1.0) is None
    assert "0.5 x its value at the start" in early_stop_reason(es, 20, 0.4, 1.0)
    es.reference = "data"
    assert early_stop_reason(es, 10, 0.6, 1.0) is None and early_stop_reason(es, 10, 0.4, 9.0)
    es.criterion = "budget"
    assert early_stop_reason(es, 10, 0.0, 1.0) is None


def test_unknown_method_name_lists_the_registered_ones():
    with pytest.raises(UnknownNameError, match="Did you mean 'symmetric'"):
        METHODS.get("symetric")


@pytest.mark.parametrize("overrides,msg", [
    (["method=symmetric", "method.stages=[ode,gan]"], "missing Stage II checkpoint"),
    (["method.gan.disc.depths=[0,7]"], "head depth beyond the backbone"),
    (["method.dmd.ratio=0"], "method.dmd.ratio"),
    (["method.gan.disc.head=vidoe"], "Did you mean 'video'"),
])
def test_impossible_combinations_fail_before_training(tiny_cfg, overrides, msg):
    cfg = tiny_cfg("task=distill", *overrides)
    with pytest.raises(ValueError, match=msg):
        distill_task.run(cfg)
    assert not list((cfg.paths.out and __import__("pathlib").Path(cfg.paths.out)).rglob("*.pt"))


@pytest.mark.parametrize("overrides,stage,reason", [
    (["method.gan.diverge.pinned_acc=0.0", "method.gan.diverge.pinned_steps=1"], "gan", "discriminator accuracy"),
    (["distill.explode_grad=1e-12"], "ode", "exploding gradient"),
    (["method.ode.lr=1e20", "method.ode.grad_clip=1e30", "method.ode.steps=4", "distill.explode_grad=null"],
     "ode", "non-finite"),
])
def test_divergence_is_a_recorded_status(tiny_cfg, overrides, stage, reason):
    cfg = tiny_cfg("task=distill", "distill.share_stages=false", *overrides)
    res = distill_task.run(cfg)
    assert res["status"] == "diverged" and res["stage"] == stage and reason in res["reason"]
    assert isinstance(res["step"], int)
    on_disk = json.load(open(f"{cfg.paths.runs}/{res['run_name']}/results.json"))
    assert on_disk["status"] == "diverged"


def test_finished_run_is_not_overwritten(tiny_cfg):
    cfg = tiny_cfg("task=distill", "method=dmd", "distill.share_stages=false")
    first = distill_task.run(cfg)
    again = distill_task.run(tiny_cfg("task=distill", "method=dmd", "distill.share_stages=false"))
    assert again["updated_at"] == first["updated_at"]


def test_shared_stage_prefix_is_reused(tiny_cfg, capsys):
    a = distill_task.run(tiny_cfg("task=distill", "method=aad1"))
    b = distill_task.run(tiny_cfg("task=distill", "method=symmetric"))
    assert "reusing stages ['ode', 'dmd']" in capsys.readouterr().out
    assert b["summary"]["stages"]["shared_from"].endswith(".pt")
    assert a["status"] == b["status"] == "finished"
    assert torch.get_num_threads() >= 1


def test_sample_verb_resamples_a_finished_run(tiny_cfg, capsys):
    from aad_bench.cli import main

    cfg = tiny_cfg("task=distill", "method=dmd", "distill.share_stages=false")
    res = distill_task.run(cfg)
    run = f"{cfg.paths.runs}/{res['run_name']}"
    assert main(["sample", run, "sample.n_videos=3", f"paths.out={cfg.paths.out}"]) == 0
    assert "videos: sprite speed generated/data" in capsys.readouterr().out
    from aad_bench.video.sets import load_index

    assert len(load_index(run + "/videos/train_len")["videos"]) == 3
    assert main(["sample", str(cfg.paths.out) + "/nothing-here"]) == 2


def test_a_new_method_is_one_yaml_in_any_config_dir(tiny_cfg, tmp_path):
    """Adding a method = one YAML (here in a user's own config dir on the search path); it trains with size=tiny."""
    conf = tmp_path / "myconf" / "method"
    conf.mkdir(parents=True)
    (conf / "mine.yaml").write_text(
        "defaults:\n  - /method_base@_here_\n  - _self_\n"
        "name: mine\ndisplay: My method\norder: 70\nsummary: frame logits without the DMD warm-up\n"
        "stages: [ode, gan]\ngan:\n  disc:\n    backbone: bidirectional\n    head: frame\n")
    cfg = tiny_cfg(f"hydra.searchpath=[file://{tmp_path / 'myconf'}]", "method=mine", "task=distill",
                   "distill.share_stages=false")
    res = distill_task.run(cfg)
    assert res["status"] == "finished", res.get("reason")
    assert res["method_info"]["display"] == "My method" and res["method_info"]["order"] == 70
    assert res["disc"] == {"backbone": "bidirectional", "head": "frame"} and res["stages"] == ["ode", "gan"]
    logged = {row["stage"] for row in RunFolder(f"{cfg.paths.runs}/{res['run_name']}").metrics()}
    assert logged == {"ode", "gan"}


def test_task_sample_resamples_through_the_app(tiny_cfg, tmp_path, capsys):
    from aad_bench.cli import main

    cfg = tiny_cfg("task=distill", "method=dmd", "distill.share_stages=false")
    res = distill_task.run(cfg)
    run = f"{cfg.paths.runs}/{res['run_name']}"
    assert main(["task=sample", f"run_dir={run}", "sample.n_videos=3", f"paths.out={cfg.paths.out}",
                 "hydra.run.dir=" + str(tmp_path / "hydra"), "size=tiny", "progress=false"]) == 0
    from aad_bench.video.sets import load_index

    assert len(load_index(run + "/videos/train_len")["videos"]) == 3
    with pytest.raises(SystemExit):
        main(["task=sample", f"paths.out={tmp_path}", "hydra.run.dir=" + str(tmp_path / "hydra")])
    assert "task=sample needs run_dir" in capsys.readouterr().err
