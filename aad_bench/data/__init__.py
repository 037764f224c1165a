"""Data sources for training and sampling: the embedded toy world (:mod:`~aad_bench.data.toy`)."""
