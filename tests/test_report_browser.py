"""Open the generated ``index.html`` in real headless Chromium (DevTools protocol over a pipe, stdlib only).

Checks: the page renders (title, tables present), every image loads (``naturalWidth > 0``) including each
arm's looping clip, no table has a column without a single value, the official VBench results file shows in its
section, and no console error, uncaught exception or failed resource load is reported. Skips only when no
Chromium is installed.
"""

from __future__ import annotations

import fcntl
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from aad_bench.reporting.cli import report_main

FIXTURE = Path(__file__).parent / "fixtures" / "runs" / "demo"
CHROMIUM = next(
    (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium not installed (apt-get install -y chromium); CI installs it via .ci/setup.d/report.sh",
)
CHECK_JS = """(() => {
  const empty = [];
  for (const t of document.querySelectorAll('table.results')) {
    const rows = Array.from(t.tBodies[0] ? t.tBodies[0].rows : []);
    const n = rows.length ? rows[0].cells.length : 0;
    for (let j = 1; j < n; j++) {
      const vals = rows.map(r => (r.cells[j] ? r.cells[j].textContent.trim() : ''));
      if (vals.every(v => v === '' || v === '—')) {
        empty.push(t.id + ':' + t.tHead.rows[t.tHead.rows.length - 1].cells[j].textContent.trim());
      }
    }
  }
  const clips = Array.from(document.querySelectorAll('img.clip'));
  return JSON.stringify({title: document.title, tables: document.querySelectorAll('table').length,
    images: document.images.length, empty_columns: empty,
    clips: clips.length, clips_loaded: clips.filter(i => i.complete && i.naturalWidth > 0).length,
    vbench: (document.getElementById('vbench') || {}).textContent || '',
    broken: Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.alt)});
})()"""


class Cdp:
    """Minimal Chrome DevTools Protocol client over ``--remote-debugging-pipe`` (fd 3 in, fd 4 out)."""

    def __init__(self, profile: Path) -> None:
        to_chrome_r, self._w = os.pipe()
        self._r, from_chrome_w = os.pipe()
        hi_r, hi_w = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_chrome_r, from_chrome_w))
        args = [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--no-default-browser-check",
            "--remote-debugging-pipe",
            f"--user-data-dir={profile}",
            "about:blank",
        ]
        self.proc = subprocess.Popen(
            args,
            close_fds=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=lambda: (os.dup2(hi_r, 3), os.dup2(hi_w, 4)),
        )
        for fd in (to_chrome_r, from_chrome_w, hi_r, hi_w):
            os.close(fd)
        self.events: queue.Queue = queue.Queue()
        self._id = 0
        self.seen: list[dict] = []
        threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self) -> None:
        buf = b""
        while chunk := os.read(self._r, 65536):
            buf += chunk
            *msgs, buf = buf.split(b"\0")
            for m in msgs:
                self.events.put(json.loads(m))

    def send(
        self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30
    ) -> dict:
        """Send a command and wait for its result; events seen meanwhile go to ``self.seen``."""
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        return self.wait(lambda m: m.get("id") == self._id, timeout).get("result", {})

    def wait(self, pred, timeout: float = 30) -> dict:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                m = self.events.get(timeout=max(0.01, end - time.monotonic()))
            except queue.Empty:
                break
            self.seen.append(m)
            if pred(m):
                if "error" in m:
                    raise RuntimeError(f"CDP error: {m['error']}")
                return m
        raise TimeoutError("no answer from chromium")

    def close(self) -> None:
        try:
            os.write(self._w, json.dumps({"id": 10**6, "method": "Browser.close"}).encode() + b"\0")
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
        finally:
            os.close(self._w)


def _errors(events: list[dict]) -> list[str]:
    out = []
    for m in events:
        p = m.get("params", {})
        if m.get("method") == "Runtime.exceptionThrown":
            out.append(str(p.get("exceptionDetails", {}).get("text")))
        elif m.get("method") == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            out.append(str([a.get("value") for a in p.get("args", [])]))
        elif m.get("method") == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            out.append(f"{p['entry'].get('text')} {p['entry'].get('url', '')}")
    return out


def inspect_page(page: Path, profile: Path) -> tuple[dict, list[str]]:
    """Load ``page`` in headless Chromium; return the DOM check and every console/load error."""
    cdp = Cdp(profile)
    try:
        target = cdp.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = cdp.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime.enable", "Log.enable", "Page.enable"):
            cdp.send(domain, session=session)
        cdp.send("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
        cdp.wait(lambda m: m.get("method") == "Page.loadEventFired" and m.get("sessionId") == session, 60)
        res = cdp.send("Runtime.evaluate", {"expression": CHECK_JS, "returnByValue": True}, session=session)
        time.sleep(0.3)  # let late console/log events arrive
        while not cdp.events.empty():
            cdp.seen.append(cdp.events.get())
        return json.loads(res["result"]["value"]), _errors(cdp.seen)
    finally:
        cdp.close()


def test_checker_catches_broken_pages(tmp_path):
    """The browser check is not vacuous: a missing image and a script error are reported."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!DOCTYPE html><html><head><title>bad</title><link rel="icon" href="data:,"></head><body>'
        '<img src="missing.png" alt="missing"><script>console.error("boom"); undefinedFn();</script>'
        '<table class="results" id="t"><thead><tr><th>Method</th><th>Aes</th><th>Img</th></tr></thead>'
        "<tbody><tr><th>a</th><td>—</td><td>1.0</td></tr><tr><th>b</th><td>—</td><td>2.0</td></tr></tbody></table>"
        "</body></html>"
    )
    page, errors = inspect_page(bad, tmp_path / "profile")
    assert page["broken"] == ["missing"] and page["empty_columns"] == ["t:Aes"]
    assert any("boom" in e for e in errors) and any("undefinedFn" in e or "Uncaught" in e for e in errors)


def test_report_opens_in_headless_chromium(tmp_path):
    out = tmp_path / "report"
    assert report_main([str(FIXTURE), "--out", str(out)]) == 0
    page, errors = inspect_page(out / "index.html", tmp_path / "profile")
    assert page["title"].startswith("aad_bench report")
    assert page["tables"] >= 4
    assert page["images"] >= 5, page
    assert page["broken"] == [], f"images that did not load: {page['broken']}"
    assert page["empty_columns"] == [], f"columns without a value: {page['empty_columns']}"
    assert page["clips"] == 14 and page["clips_loaded"] == 14  # every arm's looping clip, train_len and long
    # the official VBench results file (teacher) and the results folder without results.json (CausVid) show
    for text in ("temporal flickering", "Teacher", "CausVid", "as reported", "I2V Quality"):
        assert text in page["vbench"], text
    assert errors == [], f"console errors: {errors}"
