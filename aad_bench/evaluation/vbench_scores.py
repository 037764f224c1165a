"""VBench / VBench-I2V score constants and the official aggregate formulas.

Source: VBench's ``scripts/constant.py``, ``cal_final_score.py`` and ``cal_i2v_final_score.py``
(Vchitect/VBench on GitHub; docs/evaluation.md). Each dimension is normalised ``n = (x - Min) / (Max - Min)``
and weighted; scores here are on the 0-1 scale (the leaderboard shows ×100).

This module is the single home of the constants: the evaluation side should import from here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

# dimension -> (Min, Max) used for normalisation
NORMALIZE: dict[str, tuple[float, float]] = {
    "subject_consistency": (0.1462, 1.0),
    "background_consistency": (0.2615, 1.0),
    "temporal_flickering": (0.6293, 1.0),
    "motion_smoothness": (0.706, 0.9975),
    "dynamic_degree": (0.0, 1.0),
    "aesthetic_quality": (0.0, 1.0),
    "imaging_quality": (0.0, 1.0),
    "object_class": (0.0, 1.0),
    "multiple_objects": (0.0, 1.0),
    "human_action": (0.0, 1.0),
    "color": (0.0, 1.0),
    "spatial_relationship": (0.0, 1.0),
    "scene": (0.0, 0.8222),
    "appearance_style": (0.0009, 0.2855),
    "temporal_style": (0.0, 0.364),
    "overall_consistency": (0.0, 0.364),
    "i2v_subject": (0.1462, 1.0),
    "i2v_background": (0.2615, 1.0),
    "camera_motion": (0.0, 1.0),
}

# every weight is 1 except dynamic_degree (0.5); camera_motion is 0.1 inside the I2V score
WEIGHT: dict[str, float] = {k: 1.0 for k in NORMALIZE} | {"dynamic_degree": 0.5, "camera_motion": 0.1}

QUALITY_DIMS = (
    "subject_consistency",
    "background_consistency",
    "temporal_flickering",
    "motion_smoothness",
    "aesthetic_quality",
    "imaging_quality",
    "dynamic_degree",
)
SEMANTIC_DIMS = (
    "object_class",
    "multiple_objects",
    "human_action",
    "color",
    "spatial_relationship",
    "scene",
    "appearance_style",
    "temporal_style",
    "overall_consistency",
)
# VBench-I2V's quality score leaves temporal_flickering out
I2V_QUALITY_DIMS = (
    "subject_consistency",
    "background_consistency",
    "motion_smoothness",
    "dynamic_degree",
    "aesthetic_quality",
    "imaging_quality",
)
I2V_DIMS = ("camera_motion", "i2v_subject", "i2v_background")

# the dims reported on the 0-100 scale by the leaderboard and the AAD-1 tables
PERCENT_DIMS = frozenset(NORMALIZE)


def normalize(dim: str, value: Any) -> Any:
    """``(value - Min) / (Max - Min)`` for one dimension (0-1 scale input; floats or numpy arrays)."""
    lo, hi = NORMALIZE[dim]
    return (value - lo) / (hi - lo)


def _weighted(dims: tuple[str, ...], scores: Mapping[str, Any]) -> Any:
    """Σ w·n(x) / Σ w over ``dims``; NaN when any dimension is missing or NaN."""
    vals = [scores.get(d) for d in dims]
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in vals):
        return math.nan
    num = sum(WEIGHT[d] * normalize(d, v) for d, v in zip(dims, vals))
    return num / sum(WEIGHT[d] for d in dims)


def quality_score(scores: Mapping[str, float]) -> float:
    """VBench Quality score: 7 quality dims (dynamic weighted 0.5) / 6.5."""
    return _weighted(QUALITY_DIMS, scores)


def semantic_score(scores: Mapping[str, float]) -> float:
    """VBench Semantic score: mean of the 9 normalised semantic dims."""
    return _weighted(SEMANTIC_DIMS, scores)


def total_score(scores: Mapping[str, float]) -> float:
    """VBench Total = (4·Quality + Semantic) / 5."""
    return (4 * quality_score(scores) + semantic_score(scores)) / 5


def i2v_quality_score(scores: Mapping[str, float]) -> float:
    """VBench-I2V Quality: 6 dims (no temporal_flickering, dynamic weighted 0.5) / 5.5."""
    return _weighted(I2V_QUALITY_DIMS, scores)


def i2v_score(scores: Mapping[str, float]) -> float:
    """VBench-I2V I2V score: (0.1·n(camera_motion) + n(i2v_subject) + n(i2v_background)) / 2.1."""
    return _weighted(I2V_DIMS, scores)


def i2v_total_score(scores: Mapping[str, float]) -> float:
    """VBench-I2V Total = (I2V Quality + I2V score) / 2."""
    return (i2v_quality_score(scores) + i2v_score(scores)) / 2


AGGREGATES = {
    "vbench_quality": (quality_score, QUALITY_DIMS),
    "vbench_semantic": (semantic_score, SEMANTIC_DIMS),
    "vbench_total": (total_score, QUALITY_DIMS + SEMANTIC_DIMS),
    "vbench_i2v_quality": (i2v_quality_score, I2V_QUALITY_DIMS),
    "vbench_i2v": (i2v_score, I2V_DIMS),
    "vbench_i2v_total": (i2v_total_score, I2V_QUALITY_DIMS + I2V_DIMS),
}
