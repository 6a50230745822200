"""Checks the node's status page in headless Chromium, driven over the DevTools protocol:
the page renders the node's real figures, follows new writes without a reload, and shows
a table whose flush is failing. Saves a screenshot.

Usage: ui_check.py UI_URL EDGE_URL TABLE FAILING_TABLE SCREENSHOT_PNG
Prints what it saw as JSON; exits non-zero on the first check that fails.
"""

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import websocket

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1500,600",
    "--remote-debugging-port=0",
    "--remote-allow-origins=*",
]


class Page:
    def __init__(self, ws_url):
        self.ws = websocket.create_connection(ws_url, timeout=30)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    def eval(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def wait(self, what, expression, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.eval(expression)
            if value:
                return value
            time.sleep(0.1)
        raise SystemExit(f"timed out waiting for {what}; page: {self.eval('document.body.innerText')}")


def post_events(edge, table, n):
    for i in range(n):
        req = urllib.request.Request(
            f"{edge}/tables/{table}",
            data=json.dumps({"payload": {"ui": i}}).encode(),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200, r.status


def cell(table, cls):
    return f"(document.querySelector('tr[data-table=\"{table}\"] td.{cls}') || {{}}).textContent"


def main():
    ui_url, edge, table, failing, screenshot = sys.argv[1:6]
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        raise SystemExit("chromium is not installed (scripts/install-deps.sh installs it)")
    profile = tempfile.mkdtemp()
    proc = subprocess.Popen(
        [browser, *FLAGS, f"--user-data-dir={profile}", ui_url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = None
        deadline = time.monotonic() + 30
        while port is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            m = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
            if m:
                port = int(m.group(1))
        if port is None:
            raise SystemExit("chromium did not open its DevTools port")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            targets = [t for t in json.load(r) if t.get("type") == "page"]
        page = Page(targets[0]["webSocketDebuggerUrl"])

        # Real figures from the running node.
        page.wait("the table's row", cell(table, "events"))
        events = int(page.eval(cell(table, "events")).replace(",", ""))
        refreshes = int(page.eval("document.body.dataset.refreshes"))
        role = page.eval("document.querySelector('#node .role').textContent")
        snapshot = page.eval(cell(table, "snapshot"))
        retention = page.eval(cell(table, "retention"))
        # New writes show up without a reload: a marker set now survives.
        page.eval("window.__zombi_marker = 42")
        post_events(edge, table, 25)
        want = f"{events + 25:,}"
        page.wait(f"{want} events on the page", f"{cell(table, 'events')} === '{want}'")
        if page.eval("window.__zombi_marker") != 42:
            raise SystemExit("the page reloaded")
        later = int(page.eval("document.body.dataset.refreshes"))
        rate_points = page.eval(
            f"document.querySelector('tr[data-table=\"{table}\"] svg').dataset.points"
        )
        # The failing table is marked, with its error.
        problem = page.wait(
            "the failing flush",
            f"(document.querySelector('tr.failing[data-table=\"{failing}\"] td.problem') || {{}}).textContent",
        )
        shot = page.call("Page.captureScreenshot", format="png")
        os.makedirs(os.path.dirname(os.path.abspath(screenshot)), exist_ok=True)
        with open(screenshot, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        print(json.dumps({
            "role": role,
            "events_first": events,
            "events_after": events + 25,
            "refreshes": [refreshes, later],
            "snapshot": snapshot,
            "retention": retention,
            "rate_points": rate_points,
            "problem": problem,
            "screenshot": screenshot,
        }))
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
