"""Reports from run folders: collect → statistics → tables / official VBench / clips / figures → HTML, Markdown.

Everything here is a pure function of the on-disk formats in ``docs/contracts.md``; no metric is recomputed.
The library entry point is :func:`aad_bench.reporting.report.write_report`.
"""
