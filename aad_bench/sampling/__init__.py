"""Sampling: samplers and rollouts, video sets of samples, the ``aad-bench sample`` verb.

:mod:`~aad_bench.sampling.samplers` (teacher sampler, causal rollout, training self-rollout),
:mod:`~aad_bench.sampling.videos` (video sets written from a model), :mod:`~aad_bench.sampling.cli` (the verb).

Sampling never scores: evaluation is a separate step on the written video sets.
"""
