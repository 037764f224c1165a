"""Evaluation: VBench-style motion/consistency/quality metrics, drift, toy-world metrics, diagnostics.

Entry points: :func:`aad_bench.evaluation.runner.evaluate_path` (``aad-bench eval``) and
:func:`aad_bench.evaluation.diagnose.diagnose` (``aad-bench diagnose``). Metric names live in
:data:`aad_bench.evaluation.metrics.METRICS`; backends in the ``FLOW`` / ``FEATURES`` / ``QUALITY`` /
``INTERP`` registries.
"""
