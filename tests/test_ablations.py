"""Every ablation campaign composes, expands to its expected job count, and each job is a valid method config."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser

from aad_bench.methods import MethodSpec

REPO = Path(__file__).resolve().parents[1]
CONF = str(REPO / "aad_bench" / "conf")
EXPECTED = {"disc_2x2": 15, "warmup": 6, "r1r2": 9}


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
    assert cfg.hydra.mode.name == "MULTIRUN"
    return jobs


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_ablation_job_count(name):
    assert (REPO / "ablations" / f"{name}.yaml").read_text().splitlines()[0] == "# @package _global_"
    jobs = expand(name)
    assert len(jobs) == EXPECTED[name]
    seeds = {o for j in jobs for o in j if o.startswith("seed=")}
    assert len(seeds) >= 3
    for job in jobs[:4]:  # each job composes to a method config that validates
        with initialize_config_dir(config_dir=CONF, version_base="1.3"):
            cfg = compose(config_name="config", overrides=[f"+ablation={name}", *job])
        MethodSpec.from_cfg(cfg.method).validate(cfg.method)
        assert cfg.task == "distill"


def test_every_ablation_file_is_counted():
    files = {p.stem for p in (REPO / "ablations").glob("*.yaml")}
    assert set(EXPECTED) <= files


def test_every_baseline_preset_selects_its_method():
    for p in (REPO / "baselines").glob("*.yaml"):
        with initialize_config_dir(config_dir=CONF, version_base="1.3"):
            cfg = compose(config_name="config", overrides=[f"baseline={p.stem}"])
        assert cfg.method.name == p.stem and cfg.task == "distill"
