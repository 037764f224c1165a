"""Statistics over seeds: mean, std, n, t-based 95% CI; paired comparisons; VBench aggregates.

Only runs with status ``finished`` contribute values; the others are counted per arm so tables can mark them.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
from scipy import stats as st

from aad_bench.evaluation import vbench_scores as vs
from aad_bench.reporting.collect import collect_per_video

GROUP = ["arm", "set", "metric", "backend"]
STATUS_COUNTS = ("finished", "diverged", "failed", "running")
PAIRED_COLUMNS = ["arm", "reference", "metric", "backend", "on", "n_pairs", "mean_diff", "ci_lo", "ci_hi",
                  "t", "p", "effect_size"]
ARM_ATTRS = ("method", "nfe", "backbone", "logit", "warmup")


def t_ci(values: np.ndarray | list[float], conf: float = 0.95) -> tuple[float, float, int, float]:
    """``(mean, std (ddof=1), n, CI half-width)`` of the finite values; half-width is NaN for n < 2."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return math.nan, math.nan, 0, math.nan
    mean = float(x.mean())
    if n < 2:
        return mean, math.nan, 1, math.nan
    sd = float(x.std(ddof=1))
    return mean, sd, n, float(st.t.ppf(0.5 + conf / 2, n - 1) * sd / math.sqrt(n))


def run_status(df: pd.DataFrame) -> pd.DataFrame:
    """Per arm: attributes (method, nfe, ...), number of runs and runs per status (``n_diverged``...)."""
    attrs = [c for c in ARM_ATTRS if c in df.columns]
    runs = df.drop_duplicates("run_dir")[["arm", "status", *attrs]]
    counts = pd.crosstab(runs["arm"], runs["status"].fillna("missing"))
    out = runs.groupby("arm")[attrs].first()
    out["n_runs"] = counts.sum(axis=1)
    for s in STATUS_COUNTS:
        out[f"n_{s}"] = counts[s] if s in counts else 0
    out["n_other"] = out["n_runs"] - out[[f"n_{s}" for s in STATUS_COUNTS]].sum(axis=1)
    return out.reset_index()


def aggregate(df: pd.DataFrame, conf: float = 0.95, by: list[str] | None = None) -> pd.DataFrame:
    """Mean, std, n and CI over the finished runs of each (arm, set, metric, backend).

    Arms whose runs all diverged still get rows (``n`` = 0, NaN mean) for every metric seen in the campaign,
    so tables can mark them instead of dropping them.
    """
    by = by or GROUP
    m = df[df["metric"].notna()]
    ok = m[(m["status"] == "finished") & np.isfinite(m["value"].astype(float))]
    g = ok.groupby(by, dropna=False)["value"]
    agg = pd.DataFrame({"mean": g.mean(), "std": g.std(ddof=1), "n": g.count()}).reset_index()
    keys = m[by[1:]].drop_duplicates()
    grid = pd.DataFrame({"arm": df["arm"].unique()}).merge(keys, how="cross")
    agg = grid.merge(agg, on=by, how="left")
    agg["n"] = agg["n"].fillna(0).astype(int)
    dof = np.maximum(agg["n"].to_numpy() - 1, 1)
    half = st.t.ppf(0.5 + conf / 2, dof) * agg["std"].to_numpy() / np.sqrt(np.maximum(agg["n"], 1))
    agg["ci"] = np.where(agg["n"] >= 2, half, np.nan)
    agg["ci_lo"], agg["ci_hi"] = agg["mean"] - agg["ci"], agg["mean"] + agg["ci"]
    direction = m.dropna(subset=["direction"]).groupby("metric")["direction"].first()
    agg["direction"] = agg["metric"].map(direction)
    return agg.merge(run_status(df), on="arm", how="left")


def _paired(diff: np.ndarray) -> dict[str, float]:
    n = len(diff)
    mean, sd, _, half = t_ci(diff)
    if n >= 2 and sd > 0:
        res = st.ttest_1samp(diff, 0.0)
        t, p = float(res.statistic), float(res.pvalue)
    else:
        t = p = math.nan
    return {
        "n_pairs": n,
        "mean_diff": mean,
        "ci_lo": mean - half,
        "ci_hi": mean + half,
        "t": t,
        "p": p,
        "effect_size": mean / sd if n >= 2 and sd > 0 else math.nan,
    }


def paired_compare(
    df: pd.DataFrame,
    reference: str,
    metric: str,
    backend: str | None = None,
    set_name: str | None = None,
    on: str = "seed",
) -> pd.DataFrame:
    """Each arm vs ``reference`` on matching seeds (``on="seed"``) or videos (``on="video"``).

    Returns one row per arm: n_pairs, mean_diff (arm − reference), its 95% CI, paired t and two-sided p
    (equal to ``scipy.stats.ttest_rel``), and Cohen's d_z = mean_diff / sd_diff.
    """
    if on == "video":
        pv = collect_per_video(df[df["status"] == "finished"], metric, backend, set_name)
        wide = pv.groupby(["arm", "video"])["value"].mean().unstack("arm")
    else:
        sel = df[(df["metric"] == metric) & (df["status"] == "finished")]
        if isinstance(backend, str):
            sel = sel[sel["backend"] == backend]
        if isinstance(set_name, str):
            sel = sel[sel["set"] == set_name]
        wide = sel.groupby(["arm", "seed"])["value"].mean().unstack("arm")
    if reference not in wide:
        return pd.DataFrame(columns=PAIRED_COLUMNS)
    rows = []
    for arm in wide.columns:
        if arm != reference:
            both = wide[[arm, reference]].dropna()
            diff = (both[arm] - both[reference]).to_numpy()
            info = {"arm": arm, "reference": reference, "metric": metric, "backend": backend, "on": on}
            rows.append({**info, **_paired(diff)})
    return pd.DataFrame(rows, columns=PAIRED_COLUMNS)


def add_vbench_aggregates(df: pd.DataFrame) -> pd.DataFrame:
    """Append per-run rows for VBench Quality / I2V Quality / I2V / I2V Total recomputed from dimensions.

    A dimension measured with several backends (e.g. dynamic_degree by DIS and by RAFT) yields one
    aggregate per backend choice, labelled with the backends used (never mixed silently).
    """
    dims = set(vs.I2V_QUALITY_DIMS + vs.I2V_DIMS + vs.QUALITY_DIMS)
    m = df[df["metric"].isin(dims)]
    if m.empty:
        return df
    runcols = [
        c
        for c in df.columns
        if c not in ("metric", "version", "backend", "direction", "value", "n_videos", "n_errors", "source")
    ]
    # runs measured with the same (dim, backend) set share a signature; only within one do backends combine
    pairs = m.groupby(["run_dir", "set"])[["metric", "backend"]].apply(
        lambda g: tuple(sorted(zip(g["metric"], g["backend"].fillna(""))))
    )
    new = []
    for sig, keys in pairs.groupby(pairs).groups.items():
        sub = m.set_index(["run_dir", "set"]).loc[list(keys)].reset_index()
        new += _aggregates_for(sub, sig, runcols)
    return pd.concat([df, *new], ignore_index=True) if new else df


def _aggregates_for(m: pd.DataFrame, sig: tuple, runcols: list[str]) -> list[pd.DataFrame]:
    """VBench aggregates for runs sharing one (dim, backend) signature, one per choice of backends."""
    options: dict[str, list[str]] = {}
    for dim, backend in sig:
        options.setdefault(dim, []).append(backend)
    multi = [d for d in options if len(options[d]) > 1]
    out = []
    for choice in itertools.product(*(options[d] for d in multi)):
        chosen = dict(zip(multi, choice))
        keep = m[[chosen.get(mt, b) == b for mt, b in zip(m["metric"], m["backend"].fillna(""))]]
        wide = keep.pivot_table(index=["run_dir", "set"], columns="metric", values="value", aggfunc="first")
        base = keep.drop_duplicates(["run_dir", "set"]).set_index(["run_dir", "set"], drop=False)[runcols]
        label = "+".join(sorted(set(keep["backend"].dropna())))
        for name, (fn, need) in vs.AGGREGATES.items():
            if set(need) <= set(wide.columns):
                vals = fn({d: wide[d].to_numpy(dtype=float) for d in need})
                extra = dict(
                    metric=name,
                    version="official",
                    backend=label,
                    direction="up",
                    value=vals,
                    n_videos=None,
                    n_errors=None,
                    source=None,
                )
                out.append(base.loc[wide.index].assign(**extra).reset_index(drop=True))
    return out
