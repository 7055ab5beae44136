"""A small DevTools-protocol driver for Debian's headless ``chromium``, for tests that must see a real page.

It records what a reader's browser would complain about: console messages, uncaught exceptions, browser log
entries (blocked or failed loads, Content-Security-Policy violations) and every network request. No sleeps:
the DevTools address is read from Chromium's stderr and page loads are awaited as protocol events.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
import urllib.request
from pathlib import Path

import websocket  # websocket-client

INSTALL_HINT = "install Debian's chromium (apt-get install -y chromium) or set CHROMIUM=/path/to/chromium"


def chromium_binary() -> str | None:
    """The Chromium to use: $CHROMIUM, else ``chromium`` on PATH."""
    return os.environ.get("CHROMIUM") or shutil.which("chromium")


class HeadlessChromium:
    """One headless Chromium process with one page, driven over the DevTools protocol."""

    def __init__(self, binary: str, *, width: int = 1366, height: int = 900, timeout: float = 60.0) -> None:
        self.profile = tempfile.mkdtemp(prefix="sdgstudio-chromium-")
        self.timeout = timeout
        self.proc = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-extensions", "--hide-scrollbars", f"--window-size={width},{height}",
             f"--user-data-dir={self.profile}", "--remote-debugging-address=127.0.0.1",
             "--remote-debugging-port=0", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.stderr: list[str] = []
        endpoint = None
        for line in self.proc.stderr:  # blocks until Chromium prints its DevTools address (or exits)
            self.stderr.append(line)
            if line.startswith("DevTools listening on ws://"):
                endpoint = line.split("ws://", 1)[1].split("/", 1)[0]
                break
        if endpoint is None:
            self.close()
            raise RuntimeError("chromium exited before opening DevTools:\n" + "".join(self.stderr[-20:]))
        threading.Thread(target=self._drain, daemon=True).start()
        with urllib.request.urlopen(f"http://{endpoint}/json/list", timeout=timeout) as response:
            pages = [t for t in json.load(response) if t["type"] == "page"]
        self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=timeout, suppress_origin=True)
        self._next_id = 0
        self.events: list[dict] = []
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")

    def _drain(self) -> None:
        for line in self.proc.stderr:
            self.stderr.append(line)

    def call(self, method: str, **params) -> dict:
        """Send one command and return its result; events that arrive meanwhile are kept in ``events``."""
        self._next_id += 1
        self.ws.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, event: str) -> dict:
        """The first ``event`` not yet consumed (waiting for it if needed)."""
        for k, message in enumerate(self.events):
            if message.get("method") == event:
                return self.events.pop(k)
        while True:
            message = json.loads(self.ws.recv())
            if message.get("method") == event:
                return message
            self.events.append(message)

    def open(self, path: Path) -> None:
        """Navigate to a local file and wait for its load event (every image decoded or failed)."""
        self.call("Page.navigate", url=Path(path).resolve().as_uri())
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str):
        """Value of a JavaScript expression in the page (JSON-serializable results only)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self) -> bytes:
        """PNG of the whole page, not just the window."""
        import base64

        return base64.b64decode(self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"])

    def problems(self) -> list[str]:
        """Console errors, uncaught exceptions, error log entries and requests to anything but data:/file: URLs."""
        found = []
        for message in self.events:
            method, params = message.get("method"), message.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append(f"console.{params['type']}: {params.get('args')}")
            elif method == "Runtime.exceptionThrown":
                found.append(f"exception: {params['exceptionDetails'].get('text')}")
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                found.append(f"log: {params['entry'].get('text')} {params['entry'].get('url', '')}")
            elif method == "Network.requestWillBeSent":
                url = params["request"]["url"]
                if not url.startswith(("data:", "file:")):
                    found.append(f"network request: {url}")
            elif method == "Network.loadingFailed":
                found.append(f"load failed: {params.get('errorText')}")
        return found

    def close(self) -> None:
        try:
            if getattr(self, "ws", None) is not None:
                self.ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> HeadlessChromium:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
