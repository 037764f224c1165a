"""Statistics over seeds: mean, std, n, t-based 95% CI; paired comparisons; VBench aggregates.

Only runs with a value status (``finished``; ``evaluated`` = scored videos without a results.json; ``reported`` =
numbers copied from a paper) contribute values; the others are counted per arm so tables can mark them.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats as st

from aad_bench.evaluation import vbench_scores as vs
from aad_bench.reporting.collect import METRIC_COLUMNS, collect_per_video
from aad_bench.reporting.runs import VALUE_STATUSES

VBENCH = "vbench"  # official VBench numbers (their own composites)

GROUP = ["arm", "set", "metric", "backend"]
STATUS_COUNTS = ("finished", "diverged", "failed", "running")
PAIRED_COLUMNS = [
    "arm",
    "reference",
    "metric",
    "backend",
    "on",
    "n_pairs",
    "mean_diff",
    "ci_lo",
    "ci_hi",
    "t",
    "p",
    "effect_size",
]
ARM_ATTRS = ("method", "display", "title", "order", "nfe", "nfe_clip", "backbone", "logit", "warmup", "source")


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
    status = runs["status"].fillna("missing").where(~runs["status"].isin(VALUE_STATUSES), "finished")
    counts = pd.crosstab(runs["arm"], status)
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
    ok = m[m["status"].isin(VALUE_STATUSES) & np.isfinite(m["value"].astype(float))]
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
    if "proxy_for" in m:  # what a weight-free backend stands in for, per (metric, backend)
        proxy = m.dropna(subset=["proxy_for"]).groupby(["metric", "backend"])["proxy_for"].first().to_dict()
        agg["proxy_for"] = [proxy.get(k) for k in zip(agg["metric"], agg["backend"])]
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
        pv = collect_per_video(df[df["status"].isin(VALUE_STATUSES)], metric, backend, set_name)
        wide = pv.groupby(["arm", "video"])["value"].mean().unstack("arm")
    else:
        sel = df[(df["metric"] == metric) & df["status"].isin(VALUE_STATUSES)]
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
    """Append per-run rows for VBench's composite scores (official constants) wherever their dims are complete.

    Per run and set, at most two of each: one from official VBench dims only (backend ``vbench``) and one from
    the dims measured here, each dim from a single backend — real weights before weight-free proxies — and
    labelled with the backends used, so DIS and RAFT (or a proxy and the real model) are never mixed.
    """
    dims = set(vs.I2V_QUALITY_DIMS + vs.I2V_DIMS + vs.QUALITY_DIMS + vs.SEMANTIC_DIMS)
    m = df[df["metric"].isin(dims) & np.isfinite(df["value"].astype(float))]
    if m.empty:
        return df
    official = m[m["backend"] == VBENCH]
    measured = m[m["backend"] != VBENCH].assign(_proxy=lambda x: x["proxy_for"].notna())
    measured = measured.sort_values(["_proxy", "backend"]).drop_duplicates(["run_dir", "set", "metric"])
    runcols = [c for c in df.columns if c not in METRIC_COLUMNS]
    new = [_composites(part, runcols) for part in (official, measured.drop(columns="_proxy")) if not part.empty]
    new = [n for n in new if not n.empty]
    if not new:
        return df
    out = pd.concat([df, *new], ignore_index=True)
    out.attrs = dict(df.attrs)  # axes, root, problems travel with the data
    return out


def _composites(part: pd.DataFrame, runcols: list[str]) -> pd.DataFrame:
    """Composite rows of every run and set in ``part`` (one row per run, set and dimension), vectorised."""
    key = ["run_dir", "set"]
    value = part.pivot_table(index=key, columns="metric", values="value", aggfunc="first")
    backend = part.pivot_table(index=key, columns="metric", values="backend", aggfunc="first")
    proxy = part.assign(_p=part["proxy_for"].notna()).pivot_table(
        index=key, columns="metric", values="_p", aggfunc="first"
    )
    base = part.drop_duplicates(key).set_index(key)[[c for c in runcols if c not in key]]
    out = []
    for name, (fn, need) in vs.AGGREGATES.items():
        if not set(need) <= set(value.columns):
            continue
        ok = value[list(need)].notna().all(axis=1)
        if not ok.any():
            continue
        vals = fn({d: value.loc[ok, d].to_numpy(dtype=float) for d in need})
        labels = ["+".join(sorted(set(r))) for r in backend.loc[ok, list(need)].itertuples(index=False)]
        flags = proxy.loc[ok, list(need)].fillna(False).astype(bool)
        notes = [
            f"VBench's score (stand-ins used for {', '.join(d for d, f in zip(need, r) if f)})" if any(r) else None
            for r in flags.itertuples(index=False)
        ]
        rows = base.loc[value.index[ok]].reset_index()
        rows = rows.assign(metric=name, version="official", backend=labels, proxy_for=notes, direction="up", value=vals)
        out.append(rows)
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()
