"""Shared fixtures: tiny configs composed through the real Hydra tree, one output folder per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
CONF = str(REPO / "aad_bench" / "conf")


def compose(overrides: list[str], out: Path):
    """Compose the app config like the CLI does (no run)."""
    from hydra import compose as h_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return h_compose(config_name="config", overrides=[f"paths.out={out}", "progress=false", *overrides])


@pytest.fixture
def tiny_cfg(tmp_path):
    """A factory for tiny configs writing under this test's tmp folder."""

    def make(*overrides: str):
        return compose(["size=tiny", *overrides], tmp_path)

    return make


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    yield
