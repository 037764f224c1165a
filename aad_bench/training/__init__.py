"""Training: the teacher, one file per distillation stage, the stage driver, their plumbing.

The teacher (:mod:`~aad_bench.training.teacher`), one file per distillation stage (``ode``, ``dmd``,
``gan``: helpers, then the stage's loop), the driver that runs a method's stages (:mod:`~aad_bench.training.distill`),
and the plumbing they share (checkpoints, optimisers + EMA, seeded randomness, divergence guards, step logging).
"""
