"""Every registered metric and backend resolves; a backend that cannot run here says why before any work."""

from __future__ import annotations

import subprocess
import sys

from aad_bench.evaluation.metrics import BACKEND_KINDS, METRICS, Backend, get_backend


def test_every_metric_and_backend_resolves():
    assert len(METRICS.names()) >= 13 and "drift_score" in METRICS.names()
    for name in METRICS.names():
        metric = METRICS.get(name)
        assert metric.name == name
        get_backend(metric, metric.default_backend)  # its default is a registered backend
        for b in metric.also:
            get_backend(metric, b)
    for kind in BACKEND_KINDS.names():
        reg = BACKEND_KINDS.get(kind)
        for name in reg.names():
            backend = reg.get(name)
            assert isinstance(backend, Backend) and backend.name == name
            why = backend.available()
            assert why is None or len(why) > 20, (kind, name, why)  # unavailable: a sentence saying what is missing
            if why is None and (backend.proxy_for or kind == "drift"):
                backend.build()  # weight-free ones build here


def test_discovery_needs_no_hand_written_list():
    # a fresh interpreter that imports only the registry module still sees every metric
    code = "from aad_bench.evaluation.metrics import METRICS; print(len(METRICS.names()))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert int(out) == len(METRICS.names())
