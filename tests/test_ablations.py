"""Every ablation campaign composes, expands to the job count its header states, and each job is a valid config."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser

from aad_bench.methods import MethodSpec

REPO = Path(__file__).resolve().parents[1]
CONF = str(REPO / "aad_bench" / "conf")
ABLATIONS = sorted(p.stem for p in (REPO / "ablations").glob("*.yaml"))


def expand(name: str) -> list[list[str]]:
    """The job override lists Hydra's basic sweeper would launch for ``+ablation=name``."""
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"+ablation={name}"], return_hydra_config=True)
    params = cfg.hydra.sweeper.params or {}
    parsed = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()])
    jobs: list[list[str]] = [[]]
    for ov in parsed:
        values = list(ov.sweep_string_iterator()) if ov.is_sweep_override() else [ov.get_value_element_as_str()]
        jobs = [j + [f"{ov.get_key_element()}={v}"] for j in jobs for v in values]
    return jobs


def stated_jobs(name: str) -> int:
    """The job count a campaign file promises in its header line ``# Jobs: <how> = N.``."""
    lines = [ln for ln in (REPO / "ablations" / f"{name}.yaml").read_text().splitlines() if ln.startswith("# Jobs:")]
    assert lines, f"ablations/{name}.yaml: header has no '# Jobs: <how> = N.' line"
    return int(lines[0].split("=")[-1].split(".")[0])


@pytest.mark.parametrize("name", ABLATIONS)
def test_ablation_job_count(name):
    text = (REPO / "ablations" / f"{name}.yaml").read_text()
    assert text.splitlines()[0] == "# @package _global_"  # anywhere else Hydra silently drops the sweep
    jobs = expand(name)
    assert len(jobs) == stated_jobs(name)
    if not name.startswith("smoke"):  # a research question needs >= 3 seeds
        assert len({o for j in jobs for o in j if o.startswith("seed=")}) >= 3
    for job in jobs:  # each job composes to a config whose method validates
        with initialize_config_dir(config_dir=CONF, version_base="1.3"):
            cfg = compose(config_name="config", overrides=[f"+ablation={name}", *job])
        assert cfg.task in ("distill", "teacher")
        if cfg.task == "distill":
            MethodSpec.from_cfg(cfg.method).validate(cfg.method, cfg.model.depth)


def test_every_baseline_preset_selects_its_method():
    for p in (REPO / "baselines").glob("*.yaml"):
        with initialize_config_dir(config_dir=CONF, version_base="1.3"):
            cfg = compose(config_name="config", overrides=[f"baseline={p.stem}"])
        assert cfg.method.name == p.stem and cfg.task == "distill"
