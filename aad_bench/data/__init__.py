"""Data sources for training and sampling.

The embedded toy world (:mod:`~aad_bench.data.toy`), real clip folders → latent shards (``data=folder``), prompt
lists (``data=prompts``), VBench-I2V-style image folders, teacher ODE pairs in shards, and the batch loader the
training loops iterate. Real-data sources register here under the names people type (``data.source``).
"""

from __future__ import annotations

from aad_bench.registry import Registry

SOURCES: Registry = Registry("data source", lazy={
    "folder": "aad_bench.data.latents:prepare_folder",
    "prompts": "aad_bench.data.prompts:read_prompts",
})
