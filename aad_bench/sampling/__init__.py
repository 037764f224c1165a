"""Sampling: samplers and rollouts, video sets of samples, the ``aad-bench sample`` verb.

:mod:`~aad_bench.sampling.samplers` (teacher sampler, causal rollout, training self-rollout),
:mod:`~aad_bench.sampling.videos` (video sets written from a model), :mod:`~aad_bench.sampling.text` (captions →
text embeddings at sampling time), :mod:`~aad_bench.sampling.public` + :mod:`~aad_bench.sampling.conditions` +
:mod:`~aad_bench.sampling.public_sets` (public checkpoints sampled on a run's conditioning),
:mod:`~aad_bench.sampling.cli` (the verb).

Sampling never scores: evaluation is a separate step on the written video sets.
"""
