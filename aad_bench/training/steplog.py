"""Step logging for the stage loops: ``metrics.jsonl`` rows with steps/s, and a tqdm bar."""

from __future__ import annotations

import time
from typing import Any

from aad_bench.runfolder import RunFolder


class StepLogger:
    """Logs every ``every`` steps to ``metrics.jsonl`` (and a tracker, if given) with steps/s; feeds a tqdm bar."""

    def __init__(self, run: RunFolder, stage: str, every: int, bar: Any = None, tracker: Any = None) -> None:
        self.run, self.stage, self.every, self.bar, self.tracker = run, stage, max(1, every), bar, tracker
        self._t, self._n = time.perf_counter(), 0

    def __call__(self, step: int, values: dict[str, float], force: bool = False) -> None:
        """Count one step; write a row when ``step`` is a multiple of ``every`` (or ``force``)."""
        self._n += 1
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix({k.split("/")[-1]: f"{v:.3g}" for k, v in list(values.items())[:3]})
        if step % self.every == 0 or force:
            now = time.perf_counter()
            rate = self._n / max(now - self._t, 1e-9)
            self.run.log({"stage": self.stage, "step": step, **values, "steps_per_s": round(rate, 3)})
            if self.tracker is not None:  # TensorBoard / W&B (aad_bench.engine.tracking)
                self.tracker.log(self.stage, step, {**values, "steps_per_s": rate})
            self._t, self._n = now, 0
