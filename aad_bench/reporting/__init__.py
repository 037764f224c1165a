"""Reports from run folders: collect → statistics → tables / figures → HTML and Markdown.

Everything here is a pure function of the on-disk formats in ``docs/contracts.md``; no metric is recomputed.
"""

from aad_bench.reporting.collect import collect, collect_per_video, find_runs

__all__ = ["collect", "collect_per_video", "find_runs"]
