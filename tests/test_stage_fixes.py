"""Stage II defects of issue 11, each pinned by a test that fails on the old loop: the early stop restores the last
passing weights, the critic trains on fresh no-gradient rollouts, the probes come from the val split."""

import torch

from aad_bench.data.toy import eval_conditions
from aad_bench.tasks import distill as distill_task
from aad_bench.training import dmd
from aad_bench.training.checkpoint import load_latest


def _dmd_cfg(tiny_cfg, *extra):
    return tiny_cfg("method=dmd", "task=distill", "distill.share_stages=false", "method.dmd.steps=4",
                    "method.dmd.early_stop.criterion=motion", "method.dmd.early_stop.every=1", *extra)


def test_early_stop_restores_the_last_passing_weights(tiny_cfg, monkeypatch):
    """Checks read 1.0 (start), 0.9 (step 1, passes), 0.1 (step 2, fails): the student ends with step 1's weights."""
    readings, seen = iter([1.0, 0.9, 0.1, 0.1, 0.1]), []

    def fake_ratio(student, *a, **k):
        seen.append({n: p.detach().clone() for n, p in student.state_dict().items()})
        return next(readings)

    monkeypatch.setattr(dmd, "motion_ratio", fake_ratio)
    cfg = _dmd_cfg(tiny_cfg)
    res = distill_task.run(cfg)
    info = res["summary"]["stages"]["dmd"]
    assert info["stopped_early"] and info["kept_step"] == 1 and "restored to generator step 1" in info["stop_reason"]
    final = load_latest(f"{cfg.paths.runs}/{res['run_name']}/checkpoints")["student"]
    assert all(torch.equal(final[n], seen[1][n]) for n in final)  # the weights the step-1 check passed
    assert not all(torch.equal(final[n], seen[2][n]) for n in final)  # not the ones that failed


def test_critic_trains_on_fresh_rollouts(tiny_cfg, monkeypatch):
    calls = []
    real_loss = dmd.critic_loss

    def spy(critic, x_fake, cond, g, *a):
        calls.append((x_fake.requires_grad, x_fake.sum().item(), cond.sum().item()))
        return real_loss(critic, x_fake, cond, g, *a)

    monkeypatch.setattr(dmd, "critic_loss", spy)
    distill_task.run(_dmd_cfg(tiny_cfg, "method.dmd.early_stop.criterion=budget", "method.dmd.steps=1",
                              "method.dmd.ratio=3"))
    assert len(calls) == 3 and not any(c[0] for c in calls)
    assert len({c[1] for c in calls}) == 3 and len({c[2] for c in calls}) == 3  # new samples, new images


def test_early_stop_probes_come_from_the_val_split(tiny_cfg, monkeypatch):
    probes = []

    def fake_ratio(student, cond, gts, *a, **k):
        probes.append((cond.clone(), gts))
        return 1.0

    monkeypatch.setattr(dmd, "motion_ratio", fake_ratio)
    cfg = _dmd_cfg(tiny_cfg, "method.dmd.steps=1")
    distill_task.run(cfg)
    _, val, val_meta = eval_conditions(cfg, "val", cfg.world.n_val)
    _, ev, _ = eval_conditions(cfg, "eval", cfg.world.n_eval)
    cond, gts = probes[0]
    assert torch.equal(cond, val) and gts == [m["gt"] for m in val_meta]
    assert not any(torch.equal(c, e) for c in cond for e in ev)


def test_a_cached_stage_ii_judged_by_another_motion_measure_is_not_reused(tiny_cfg, monkeypatch):
    """Stage II's motion early stop judges by the sprite measure: a shared Stage I + II prefix cached under another
    version of it may have stopped at another step, so the version is part of the prefix's cache key."""
    from aad_bench.training import distill

    cfg = _dmd_cfg(tiny_cfg)
    key = distill.stage_key(cfg, "dmd")
    monkeypatch.setattr(distill, "MOTION_VERSION", distill.MOTION_VERSION + 1)
    assert distill.stage_key(cfg, "dmd") != key
    assert distill.stage_key(cfg, "ode") == distill.stage_key(_dmd_cfg(tiny_cfg), "ode")  # Stage I is not judged
    budget = _dmd_cfg(tiny_cfg, "method.dmd.early_stop.criterion=budget")
    assert "motion_measure" not in distill.stage_key(budget, "dmd")
