"""Sampling: the samplers and rollouts (:mod:`~aad_bench.sampling.samplers`), video sets of samples written from a
model (:mod:`~aad_bench.sampling.videos`) and the ``aad-bench sample`` verb (:mod:`~aad_bench.sampling.cli`).

Sampling never scores: evaluation is a separate step on the written video sets.
"""
