"""Does a campaign show the paper's discriminator ordering? One paragraph, computed from the numbers.

The paper's claim (AAD-1, Table 3): the symmetric causal × frame discriminator lets the student collapse (loses
motion), while the bidirectional × video discriminator keeps motion with the lowest drift. The paragraph compares
the plain arms of those two cells by a paired test over seeds on a motion metric, and ranks every discriminator
arm by its mean drift on the long rollouts; it says "holds", "partly holds" or "does not hold", as measured.
"""

from __future__ import annotations

import pandas as pd

from aad_bench.reporting.stats import paired_compare
from aad_bench.reporting.tables import measured

# motion metrics, preferred first: the toy world's sprite measure, then VBench's dynamic degree
MOTION = [("toy_speed_ratio", "train_len"), ("dynamic_degree", "train_len")]
DRIFT = ("drift_score", "long")
ALPHA = 0.05


def _plain_arm(arms: pd.DataFrame, backbone: str, logit: str) -> str | None:
    """The arm of this discriminator cell with no swept settings (its name is its method's), else the shortest."""
    sel = arms[(arms["backbone"] == backbone) & (arms["logit"] == logit)]
    names = sorted(sel["arm"], key=lambda a: (a not in set(sel["method"]), len(a)))
    return names[0] if names else None


def _metric(agg: pd.DataFrame, arms: list[str], metric: str, set_name: str) -> tuple[str, pd.DataFrame] | None:
    """The first backend (alphabetically) that scored ``metric`` on ``set_name`` for every arm in ``arms``."""
    sel = agg[(agg["metric"] == metric) & (agg["set"] == set_name)]
    for backend in sorted(sel["backend"].dropna().unique()):
        rows = sel[(sel["backend"] == backend) & sel["arm"].isin(arms)].set_index("arm")
        if set(arms) <= set(rows.index) and rows.loc[arms, "mean"].notna().all():
            return backend, rows
    return None


def ordering_verdict(df: pd.DataFrame, agg: pd.DataFrame) -> str | None:
    """The paper's ordering, checked in one paragraph.

    Whether causal × frame loses motion against bidirectional × video (paired over seeds, p < 0.05) and whether
    bidirectional × video has the lowest mean drift of the discriminator arms. ``None`` when the campaign lacks
    either arm or a motion metric scored for both.
    """
    agg = measured(agg)
    arms = agg.drop_duplicates("arm")
    cf, bv = _plain_arm(arms, "causal", "frame"), _plain_arm(arms, "bidirectional", "video")
    if not cf or not bv:
        return None
    motion = next(((m, s, *got) for m, s in MOTION if (got := _metric(agg, [cf, bv], m, s))), None)
    if motion is None:
        return None
    metric, set_name, backend, rows = motion
    pair = paired_compare(df, bv, metric, backend, set_name).set_index("arm")
    diff, p, n = (pair.loc[cf, k] for k in ("mean_diff", "p", "n_pairs")) if cf in pair.index else (None, None, 0)
    collapses = diff is not None and diff < 0 and pd.notna(p) and p < ALPHA
    test = f"paired Δ {diff:+.3g}, p {p:.2g}, n {n} seeds" if n and pd.notna(p) else "no paired test: < 2 shared seeds"
    text = (f"Motion ({metric}@{backend}, {set_name}): causal × frame ({cf}) {rows.loc[cf, 'mean']:.3g} against "
            f"bidirectional × video ({bv}) {rows.loc[bv, 'mean']:.3g} ({test}): causal × frame "
            f"{'loses motion' if collapses else 'does not measurably lose motion'}.")
    disc = arms.loc[arms["backbone"].map(lambda b: isinstance(b, str)), "arm"].tolist()
    drift = _metric(agg, disc, *DRIFT)
    lowest = False
    if drift:
        dback, drows = drift
        ranked = drows.loc[disc, "mean"].sort_values()
        lowest = ranked.index[0] == bv
        text += (f" Drift ({DRIFT[0]}@{dback}, {DRIFT[1]}): bidirectional × video {drows.loc[bv, 'mean']:.3g}, "
                 f"rank {list(ranked.index).index(bv) + 1} of {len(ranked)} discriminator arms (lowest: "
                 f"{ranked.index[0]} {ranked.iloc[0]:.3g}).")
    else:
        text += " Drift: not scored for every discriminator arm."
    held = int(collapses) + int(lowest)
    verdict = ["does not hold", "partly holds", "holds"][held]
    return (f"The paper's ordering (causal × frame collapses; bidirectional × video keeps motion with the lowest "
            f"drift) {verdict} in these runs. " + text)
