"""The dossier in a real browser: headless Chromium, network blocked, over the DevTools
protocol (CDP) on a pipe (``--remote-debugging-pipe``: JSON messages separated by NUL bytes,
commands on the browser's fd 3, replies on its fd 4), so nothing is downloaded and no
websocket library is needed.

Asserts: no request leaves the file (every request is file: or data:), no failed request, no
console error or exception, every figure has a non-zero rendered size; the print stylesheet
produces a PDF. Screenshots are written to the test's tmp_path (``dossier.png``) and, when
``DPGENOME_SCREENSHOT_DIR`` is set, copied there for a human to look at.
"""

from __future__ import annotations

import base64
import fcntl
import io
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dpgenome.dossier import FIGURE_CAPTIONS, render_dossier
from dpgenome.findings import EvaluationContext
from dpgenome.paths import shipped_policy
from dpgenome.policy import Override, evaluate, load_policy
from test_dossier import DEMO_PUBLIC_CONTROL

pytestmark = pytest.mark.tools

FIXTURES = Path(__file__).parent / "fixtures"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-extensions",
    "--disable-default-apps",
    "--no-default-browser-check",
    "--mute-audio",
    "--remote-debugging-pipe",
]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("headless Chromium not found on PATH (Debian package `chromium`; CI installs it)")


def _high(fd: int) -> int:
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD, 100)
    os.close(fd)
    return moved


class Browser:
    """A minimal CDP client over ``--remote-debugging-pipe``."""

    def __init__(self, binary: str, profile: Path) -> None:
        # Move the browser's ends above fd 100 so "3<&N 4>&M" cannot clobber one
        # with the other (pytest may already hold fds 3 and 4).
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        to_browser_r, from_browser_w = (_high(to_browser_r), _high(from_browser_w))
        command = f'exec "$0" "$@" 3<&{to_browser_r} 4>&{from_browser_w}'
        self.proc = subprocess.Popen(
            [
                shutil.which("bash") or "/bin/bash",
                "-c",
                command,
                binary,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
            ],
            pass_fds=(to_browser_r, from_browser_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=(profile.parent / "chromium.log").open("wb"),
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                raise TimeoutError("no answer from Chromium")
            ready, _, _ = select.select([self._from_browser], [], [], timeout)
            if ready:
                chunk = os.read(self._from_browser, 1 << 16)
                if not chunk:
                    raise RuntimeError("Chromium closed the DevTools pipe")
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        session: str | None = None,
        timeout: float = 60.0,
    ) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self._read_message(deadline)
            self.events.append(event)
            if event.get("method") == method:
                return event

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=10)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=15)
        os.close(self._to_browser)
        os.close(self._from_browser)


def all_figures() -> dict[str, str]:
    """Every figure the release template places, drawn by matplotlib from simulated numbers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(3)
    out = {}
    with matplotlib.rc_context({"svg.hashsalt": "dpgenome-test"}):
        for name in FIGURE_CAPTIONS:
            fig, ax = plt.subplots(figsize=(6, 2.6) if name == "manhattan" else (3.4, 3))
            if name == "phenotype_correlation":
                ax.imshow(np.corrcoef(rng.normal(size=(6, 50))), cmap="RdBu_r", vmin=-1, vmax=1)
            else:
                x = rng.uniform(size=300)
                ax.scatter(x, x + rng.normal(scale=0.1, size=300), s=3)
            ax.set_title(name)
            buf = io.StringIO()
            fig.savefig(buf, format="svg")
            plt.close(fig)
            out[name] = buf.getvalue()
    return out


FIGURE_PROBE = """JSON.stringify(
Array.from(document.querySelectorAll('figure[data-figure]')).map(f => {
  const svg = f.querySelector('svg');
  const r = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  const images = Array.from(f.querySelectorAll('image')).map(i => i.getBoundingClientRect().width);
  return {name: f.dataset.figure, width: r.width, height: r.height, images: images,
          missing: !!f.querySelector('.missing')};
}))"""


def load(html_path: Path, tmp_path: Path, screenshot: Path) -> dict[str, Any]:
    browser = Browser(chromium(), tmp_path / "profile")
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Page", "Network", "Runtime", "Log"):
            browser.send(f"{domain}.enable", session=session)
        browser.send(
            "Network.setBlockedURLs",
            {"urls": ["http://*", "https://*", "ws://*", "wss://*", "ftp://*"]},
            session=session,
        )
        browser.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1200, "height": 900, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        browser.send("Page.navigate", {"url": html_path.resolve().as_uri()}, session=session)
        browser.wait_for("Page.loadEventFired")
        probe = browser.send(
            "Runtime.evaluate", {"expression": FIGURE_PROBE, "returnByValue": True}, session=session
        )
        figures = json.loads(probe["result"]["value"])
        height = browser.send(
            "Runtime.evaluate",
            {"expression": "document.documentElement.scrollHeight", "returnByValue": True},
            session=session,
        )["result"]["value"]
        browser.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1200, "height": int(height), "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        shot = browser.send("Page.captureScreenshot", {"format": "png"}, session=session)
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        pdf = browser.send("Page.printToPDF", {"printBackground": True}, session=session)
        events = list(browser.events)
    finally:
        browser.close()
    return {"figures": figures, "events": events, "pdf": base64.b64decode(pdf["data"])}


def check(outcome: dict[str, Any]) -> None:
    events = outcome["events"]
    urls = [
        e["params"]["request"]["url"]
        for e in events
        if e.get("method") == "Network.requestWillBeSent"
    ]
    assert urls, "the page itself was not requested"
    external = [u for u in urls if not u.startswith(("file:", "data:"))]
    assert external == [], f"requests leaving the file: {external}"
    failed = [e["params"] for e in events if e.get("method") == "Network.loadingFailed"]
    assert failed == [], f"failed requests: {failed}"
    console = [
        e["params"]
        for e in events
        if e.get("method") == "Runtime.consoleAPICalled"
        and e["params"].get("type") in ("error", "assert")
    ]
    exceptions = [e["params"] for e in events if e.get("method") == "Runtime.exceptionThrown"]
    logs = [
        e["params"]["entry"]
        for e in events
        if e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error"
    ]
    assert (console, exceptions, logs) == ([], [], []), (console, exceptions, logs)
    figures = outcome["figures"]
    assert figures, "no figure in the page"
    for fig in figures:
        assert not fig["missing"], f"figure {fig['name']} is missing"
        assert fig["width"] > 50 and fig["height"] > 50, fig
        assert all(w > 0 for w in fig["images"]), fig
    assert outcome["pdf"].startswith(b"%PDF") and len(outcome["pdf"]) > 10_000


def keep(screenshot: Path) -> None:
    folder = os.environ.get("DPGENOME_SCREENSHOT_DIR")
    if folder:
        shutil.copy(screenshot, Path(folder) / screenshot.name)


def test_dossier__renders_offline_in_chromium(tmp_path: Path) -> None:
    doc = json.loads((FIXTURES / "results_block.json").read_text())
    doc["audit"]["public_control"] = dict(DEMO_PUBLIC_CONTROL)  # its table renders too
    evaluation = evaluate(
        doc, load_policy(shipped_policy("consortium")), context=EvaluationContext(8.0, 1e-5, 1)
    )
    override = Override(
        "Data access committee accepted the spurious locus after review",
        "Dr B. Jones",
        "2026-11-24T07:00:00+00:00",
    )
    html_path = tmp_path / "dossier.html"
    html_path.write_text(render_dossier(doc, evaluation, all_figures(), override=override))
    screenshot = tmp_path / "dossier.png"
    outcome = load(html_path, tmp_path, screenshot)
    check(outcome)
    names = {f["name"] for f in outcome["figures"]}
    assert names == {*FIGURE_CAPTIONS, "roc", "dcr"}
    assert screenshot.stat().st_size > 50_000
    keep(screenshot)


def test_browser_check__catches_an_external_request(tmp_path: Path) -> None:
    """Negative control: the same checks fail on a page that tries to load a remote image."""
    doc = json.loads((FIXTURES / "results_approve.json").read_text())
    evaluation = evaluate(
        doc, load_policy(shipped_policy("consortium")), context=EvaluationContext(0.0, 0.0, 0)
    )
    html = render_dossier(doc, evaluation, all_figures())
    html = html.replace("</main>", '<img src="https://example.org/tracker.png" alt=""></main>')
    html_path = tmp_path / "leaky.html"
    html_path.write_text(html)
    outcome = load(html_path, tmp_path, tmp_path / "leaky.png")
    with pytest.raises(AssertionError):
        check(outcome)
