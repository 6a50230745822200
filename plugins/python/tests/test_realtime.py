"""Real-time reads of a real Zombi node through zombi_iceberg.

Spawns zombi-node and zombi-edge (from $ZOMBI_BIN_DIR, default ~/.cache/zombi-target/debug)
on ephemeral loopback ports with their own temp data dirs, writes events, and checks that
scans return every acknowledged event exactly once, prune hot segments, fall back to
committed rows when the node is down or hangs, and recover from 410/429.

Run:  ~/.cache/zombi-venv/bin/python plugins/python/tests/test_realtime.py   (or pytest)
"""

from __future__ import annotations

import http.server
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

import zombi_iceberg  # noqa: E402
from pyiceberg.expressions import And, EqualTo, GreaterThanOrEqual, IsNull  # noqa: E402

BIN_DIR = Path(os.environ.get("ZOMBI_BIN_DIR", Path.home() / ".cache/zombi-target/debug"))
START_DEADLINE_S = 30.0
CATALOG_TOKEN = "catalog-token-0123456789abcdef"
HOT_TOKEN = "hot-token-0123456789abcdef0123"


# -- processes -----------------------------------------------------------------------------


def _die_with_parent() -> None:
    """Linux: the child gets SIGKILL if this test process dies without cleaning up."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Proc:
    """A spawned binary that printed `... listening on http://ADDR` on stdout."""

    def __init__(self, args: list[str], env: dict[str, str], name: str, log_dir: Path) -> None:
        self.name = name
        self.stderr = open(log_dir / f"{name}.stderr", "wb")
        self.popen = subprocess.Popen(
            args,
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        self.url = self._wait_listening()

    def _wait_listening(self) -> str:
        found: list[str] = []

        def read() -> None:
            for raw in self.popen.stdout:  # type: ignore[union-attr]
                line = raw.decode(errors="replace").strip()
                if "listening on " in line:
                    found.append(line.split("listening on ", 1)[1])
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(START_DEADLINE_S)
        if not found:
            self.kill()
            raise RuntimeError(f"{self.name} did not print its address within {START_DEADLINE_S}s")
        return found[0]

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                pass
        if self.popen.stdout:
            self.popen.stdout.close()
        self.stderr.close()


class Cluster:
    """One node and one edge on their own data dir. Writes record what was acknowledged."""

    def __init__(self, node_env: dict[str, str] | None = None, admin_token: str | None = None) -> None:
        for b in ("zombi-node", "zombi-edge"):
            if not (BIN_DIR / b).exists():
                pytest.skip(f"{BIN_DIR / b} is not built")
        self.dir = Path(tempfile.mkdtemp(prefix="zombi-py-"))
        self.data_dir = self.dir / "data"
        self.procs: list[Proc] = []
        self.admin_token = admin_token
        self.acked_by_table: dict[str, set[tuple[int, int]]] = {}
        env = {"ZOMBI_NODE__FLUSH__INTERVAL_MS": "3600000", "RUST_LOG": "warn", **(node_env or {})}
        try:
            self.node = self._spawn(
                [str(BIN_DIR / "zombi-node"), "--listen", "127.0.0.1:0", "--data-dir", str(self.data_dir)], env, "node"
            )
            self.edge = self._spawn(
                [str(BIN_DIR / "zombi-edge"), "--listen", "127.0.0.1:0", "--node-url", self.node.url],
                {"RUST_LOG": "warn"},
                "edge",
            )
            wait_http_ok(self.node.url + "/health")
            wait_http_ok(self.edge.url + "/health")
        except BaseException:
            self.stop()
            raise

    def _spawn(self, args: list[str], env: dict[str, str], name: str) -> Proc:
        proc = Proc(args, env, name, self.dir)
        self.procs.append(proc)
        return proc

    @property
    def warehouse(self) -> str:
        return f"file://{self.data_dir.resolve()}/warehouse"

    def write(self, table: str, events: list[dict]) -> None:
        body = "".join(json.dumps(e) + "\n" for e in events)
        r = requests.post(
            f"{self.edge.url}/tables/{table}/bulk",
            data=body,
            headers={"content-type": "application/x-ndjson"},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        acked = self.acked(table)
        for p in r.json()["partitions"]:
            for seq in range(p["first_sequence"], p["last_sequence"] + 1):
                acked.add((p["partition"], seq))

    def write_one(self, table: str, event: dict) -> None:
        r = requests.post(f"{self.edge.url}/tables/{table}", json=event, timeout=30)
        assert r.status_code == 200, r.text
        self.acked(table).add((r.json()["partition"], r.json()["sequence"]))

    def acked(self, table: str) -> set[tuple[int, int]]:
        """(partition, sequence) of every event of `table` the edge acknowledged."""
        return self.acked_by_table.setdefault(table, set())

    def flush(self, table: str) -> dict:
        headers = {"Authorization": f"Bearer {self.admin_token}"} if self.admin_token else {}
        r = requests.post(f"{self.node.url}/tables/{table}/flush", headers=headers, timeout=60)
        assert r.status_code == 200, r.text
        return r.json()

    def catalog(self, **props) -> zombi_iceberg.ZombiCatalog:
        # A generous timeout: the machine may be busy (debug binaries, parallel builds), and
        # a slow answer would turn a hot read into a cold-only one. Timeout tests set their own.
        props.setdefault("zombi.planning-timeout-ms", 30_000)
        return zombi_iceberg.load_catalog("zombi", uri=self.node.url, **props)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.kill()
        self.procs.clear()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_http_ok(url: str, deadline_s: float = START_DEADLINE_S) -> None:
    end = time.monotonic() + deadline_s
    last: object = None
    while time.monotonic() < end:
        try:
            r = requests.get(url, timeout=2)
            if r.status_code == 200:
                return
            last = r.status_code
        except requests.RequestException as exc:
            last = exc
        time.sleep(0.05)
    raise RuntimeError(f"{url} not ready within {deadline_s}s: {last}")


def pairs(table) -> list[tuple[int, int]]:
    return list(zip(table.column("partition").to_pylist(), table.column("sequence").to_pylist()))


def hour_floor_ms(ms: int) -> int:
    return ms - ms % 3_600_000


def events(n: int, partition: int, ts_ms: int | None = None, start_v: int = 0) -> list[dict]:
    out = []
    for i in range(n):
        e: dict = {"payload": {"v": start_v + i}, "partition": partition}
        if ts_ms is not None:
            e["timestamp_ms"] = ts_ms + i
        out.append(e)
    return out


@pytest.fixture(scope="module")
def cluster():
    c = Cluster()
    try:
        yield c
    finally:
        c.cleanup()


@pytest.fixture(scope="module")
def clicks(cluster):
    """Table `clicks`: committed rows in partitions 0 and 1, then hot rows in partitions 0,
    1 and 2, some an hour (or more) back so that they land in a segment of their own."""
    cluster.write_one("clicks", {"payload": {"v": 1}, "partition": 0})
    cluster.write("clicks", events(5, 0) + events(4, 1))
    snap = cluster.flush("clicks")
    committed = set(cluster.acked("clicks"))
    now_ms = int(time.time() * 1000)
    old_ms = hour_floor_ms(now_ms) - 2 * 3_600_000 + 60_000
    cluster.write("clicks", events(3, 0) + events(2, 1))
    cluster.write("clicks", events(4, 2, ts_ms=old_ms))
    old_pairs = {(2, s) for s in range(4)}
    return {"snapshot": snap, "committed": committed, "old_ms": old_ms, "old_pairs": old_pairs}


# -- exactly once ----------------------------------------------------------------------------


def test_cold_plus_hot_is_every_acknowledged_event_once(cluster, clicks):
    table = cluster.catalog().load_table("clicks")
    assert isinstance(table, zombi_iceberg.ZombiTable) and not table.from_warehouse
    scan = table.scan()
    rows = scan.to_arrow()
    got = pairs(rows)
    assert len(got) == len(set(got)) == len(cluster.acked("clicks")), scan.last_plan
    assert set(got) == cluster.acked("clicks")
    plan = scan.last_plan
    assert plan.cold_only_reason is None
    assert plan.watermarks == {0: 6, 1: 4}
    assert plan.hot_rows == len(cluster.acked("clicks")) - len(clicks["committed"]) > 0
    assert plan.read == len(plan.segments) == plan.listed >= 3
    assert scan.count() == len(cluster.acked("clicks"))
    assert scan.to_arrow_batch_reader().read_all().num_rows == len(cluster.acked("clicks"))
    assert table.scan().plan_files()  # plan_files stays the committed files


def test_many_events_across_flushes(cluster):
    now_ms = int(time.time() * 1000)
    hours = [hour_floor_ms(now_ms) - h * 3_600_000 + 1000 for h in (0, 1, 3)]
    for round_ in range(3):
        batch = []
        for p in range(4):
            batch += events(500, p, ts_ms=hours[(p + round_) % 3], start_v=round_ * 1000)
        cluster.write("volume", batch)
        if round_ < 2:
            cluster.flush("volume")
    table = cluster.catalog().load_table("volume")
    scan = table.scan()
    got = pairs(scan.to_arrow())
    assert len(got) == len(set(got)) == 6000 and set(got) == cluster.acked("volume"), scan.last_plan
    assert scan.count() == 6000 and scan.last_plan.hot_rows == 2000
    assert scan.last_plan.watermarks == {p: 1000 for p in range(4)}
    con = scan.to_duckdb("volume")
    assert con.execute("SELECT count(DISTINCT (partition, sequence)) FROM volume").fetchone()[0] == 6000


def test_table_without_snapshot_reads_everything_hot(cluster):
    cluster.write("fresh", events(3, 0) + events(2, 5))
    table = cluster.catalog().load_table("zombi.fresh")
    assert table.current_snapshot() is None
    scan = table.scan()
    got = pairs(scan.to_arrow())
    want = {(0, 0), (0, 1), (0, 2), (5, 0), (5, 1)}
    assert sorted(got) == sorted(want), scan.last_plan
    assert scan.last_plan.watermarks == {} and scan.count() == 5


# -- filters, projection, limit ------------------------------------------------------------


def test_row_filter_prunes_hot_segments(cluster, clicks):
    import datetime

    table = cluster.catalog().load_table("clicks")
    all_segments = table.scan().hot_segments()
    old = datetime.datetime.fromtimestamp(clicks["old_ms"] / 1000, datetime.timezone.utc)
    by_hour = And(EqualTo("event_date", old.date().isoformat()), EqualTo("event_hour", old.hour))
    scan = table.scan(row_filter=by_hour)
    segments = scan.hot_segments()
    assert len(all_segments) > len(segments) == 1, (all_segments, segments)
    old_date = (old.date() - datetime.date(1970, 1, 1)).days
    assert segments[0]["partition"] == 2 and segments[0]["partition_values"] == [old_date, old.hour]
    rows = scan.to_arrow()
    assert set(pairs(rows)) == clicks["old_pairs"]
    assert scan.last_plan.read == 1
    assert scan.count() == len(clicks["old_pairs"])

    # Metrics pruning: sequence bounds and null counts.
    high = table.scan(row_filter=GreaterThanOrEqual("sequence", 6))
    assert {s["partition"] for s in high.hot_segments()} == {0}
    assert set(pairs(high.to_arrow())) == {(p, s) for p, s in cluster.acked("clicks") if s >= 6}
    nulls = table.scan(row_filter=IsNull("payload"))
    assert nulls.hot_segments() == [] and nulls.to_arrow().num_rows == 0

    # The filter is exact on hot rows, not only a pruning hint.
    exact = table.scan(row_filter="partition = 0 and sequence = 7")
    assert pairs(exact.to_arrow()) == [(0, 7)] and exact.count() == 1


def test_selected_fields_and_limit(cluster, clicks):
    table = cluster.catalog().load_table("clicks")
    rows = table.scan(selected_fields=("sequence", "payload")).to_arrow()
    assert rows.column_names == ["sequence", "payload"] and rows.num_rows == len(cluster.acked("clicks"))
    assert table.scan(limit=3).to_arrow().num_rows == 3
    assert table.scan(limit=len(cluster.acked("clicks")) + 10).to_arrow().num_rows == len(cluster.acked("clicks"))
    reader = table.scan(selected_fields=("partition", "sequence"), limit=4).to_arrow_batch_reader()
    assert reader.read_all().num_rows == 4
    values = sorted(json.loads(p)["v"] for p in table.scan(row_filter="partition = 2").to_arrow()["payload"].to_pylist())
    assert values == [0, 1, 2, 3]


def test_hot_schema_matches_cold(cluster, clicks):
    table = cluster.catalog().load_table("clicks")
    cold = table.scan(snapshot_id=table.current_snapshot().snapshot_id).to_arrow()
    both = table.scan().to_arrow()
    assert both.schema == cold.schema


# -- pinned snapshots, flushes between reads ------------------------------------------------


def test_pinned_snapshot_is_cold_only(cluster, clicks):
    table = cluster.catalog().load_table("clicks")
    snap = table.current_snapshot().snapshot_id
    for scan in (table.scan(snapshot_id=snap), table.scan().use_ref("main")):
        got = set(pairs(scan.to_arrow()))
        assert got == clicks["committed"]
        assert scan.last_plan.cold_only and scan.hot_segments() == []
        assert scan.count() == len(clicks["committed"])
    off = table.scan(options={zombi_iceberg.HOT_OPTION: "false"})
    assert set(pairs(off.to_arrow())) == clicks["committed"]


def test_flush_between_two_reads_changes_nothing(cluster, clicks):
    cluster.write("flushy", events(4, 0) + events(3, 1))
    cluster.flush("flushy")
    cluster.write("flushy", events(5, 0) + events(2, 3))
    want = {(0, s) for s in range(9)} | {(1, s) for s in range(3)} | {(3, s) for s in range(2)}
    # No listing reuse: the second read lists again, with the old snapshot's watermarks.
    catalog = cluster.catalog(**{"zombi.hot-listing-ttl-ms": 0})
    scan = catalog.load_table("flushy").scan()
    first = pairs(scan.to_arrow())
    cluster.flush("flushy")
    second = pairs(scan.to_arrow())
    assert sorted(first) == sorted(second) == sorted(want)
    assert scan.last_plan.hot_rows == 7
    fresh = catalog.load_table("flushy").scan()
    assert sorted(pairs(fresh.to_arrow())) == sorted(want)
    assert fresh.last_plan.hot_rows == 0


def test_listing_is_memoized_per_snapshot(cluster):
    cluster.write("memo", events(2, 0))
    # A TTL far beyond the test's run: the second read must come from the memo.
    catalog = cluster.catalog(**{"zombi.hot-listing-ttl-ms": 600_000})
    scan = catalog.load_table("memo").scan()
    first = scan.to_arrow().num_rows
    cluster.write("memo", events(3, 0))
    second = scan.count()
    assert first == second == 2
    uncached = cluster.catalog(**{"zombi.hot-listing-ttl-ms": 0}).load_table("memo").scan()
    assert uncached.count() == 5


# -- engines -----------------------------------------------------------------------------


def test_duckdb(cluster, clicks):
    pytest.importorskip("duckdb")
    table = cluster.catalog().load_table("clicks")
    con = table.scan().to_duckdb("clicks")
    n, distinct = con.execute("SELECT count(*), count(DISTINCT (partition, sequence)) FROM clicks").fetchone()
    assert n == distinct == len(cluster.acked("clicks"))
    hour_rows = con.execute("SELECT count(*) FROM clicks WHERE partition = 2").fetchone()[0]
    assert hour_rows == len(clicks["old_pairs"])


def test_pandas(cluster, clicks):
    pytest.importorskip("pandas")
    df = cluster.catalog().load_table("clicks").scan().to_pandas()
    assert len(df) == len(cluster.acked("clicks"))


# -- tokens, 410, 429 (through a fault-injecting proxy in front of the node) ----------------


class FaultProxy:
    """Forwards to the node; answers 410 or 429 instead when told to; records the
    Authorization header of every hot request."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.faults = {"listing_410": 0, "segment_410": 0, "segment_429": 0}
        self.auth: list[str | None] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def answer(self, status: int, body: bytes, ctype: str = "application/json", extra=()) -> None:
                self.send_response(status)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(body)))
                for k, v in extra:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                with proxy.lock:
                    proxy.auth.append(self.headers.get("Authorization"))
                    fault = None
                    if path.endswith("/hot/segments") and proxy.faults["listing_410"] > 0:
                        proxy.faults["listing_410"] -= 1
                        fault = (410, [])
                    elif "/hot/segments/" in path and proxy.faults["segment_410"] > 0:
                        proxy.faults["segment_410"] -= 1
                        fault = (410, [])
                    elif "/hot/segments/" in path and proxy.faults["segment_429"] > 0:
                        proxy.faults["segment_429"] -= 1
                        fault = (429, [("Retry-After", "0")])
                if fault:
                    return self.answer(fault[0], b'{"error":{"code":"injected","message":"injected"}}', extra=fault[1])
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "accept")}
                r = requests.get(proxy.target + self.path, headers=headers, timeout=30)
                self.answer(r.status_code, r.content, r.headers.get("content-type", "application/json"))

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(cluster):
    p = FaultProxy(cluster.node.url)
    try:
        yield p
    finally:
        p.close()


def test_410_reloads_and_plans_again(cluster, clicks, proxy):
    catalog = cluster.catalog(**{"zombi.hot-uri": proxy.url, "zombi.hot-listing-ttl-ms": 0})
    table = catalog.load_table("clicks")
    proxy.faults["listing_410"] = 1
    scan = table.scan()
    assert set(pairs(scan.to_arrow())) == cluster.acked("clicks")
    assert scan.last_plan.replans == 1
    proxy.faults["segment_410"] = 1
    scan = table.scan()
    assert sorted(pairs(scan.to_arrow())) == sorted(cluster.acked("clicks"))
    assert scan.last_plan.replans == 1
    proxy.faults["listing_410"] = 100
    with pytest.raises(zombi_iceberg.SnapshotTooOld):
        table.scan().to_arrow()
    proxy.faults["listing_410"] = 0


def test_410_from_the_node_when_retention_passed_the_snapshot():
    """A real 410: with no retention and no lease, the events of the loaded snapshot's
    hot set are deleted once a newer snapshot commits them."""
    c = Cluster(node_env={"ZOMBI_NODE__FLUSH__RETENTION_SECS": "0", "ZOMBI_NODE__FLUSH__HOT_LEASE_SECS": "0"})
    try:
        c.write("old", events(2, 0))
        c.flush("old")
        catalog = c.catalog(**{"zombi.hot-listing-ttl-ms": 0})
        stale = catalog.load_table("old")
        first = stale.scan()
        assert first.count() == 2 and first.last_plan.watermarks == {0: 2}
        c.write("old", events(3, 0))
        c.flush("old")
        deadline = time.monotonic() + 20
        while True:
            r = requests.get(f"{c.node.url}/tables/old/hot/segments?watermarks=0:2", timeout=5)
            if r.status_code == 410:
                break
            assert time.monotonic() < deadline, f"no 410 after the second flush: {r.status_code} {r.text}"
            c.flush("old")  # retention runs with the flusher
            time.sleep(0.1)
        c.write("old", events(1, 0))
        scan = stale.scan()
        assert sorted(pairs(scan.to_arrow())) == sorted(c.acked("old"))
        assert scan.last_plan.replans == 1 and scan.last_plan.watermarks == {0: 5}
    finally:
        c.cleanup()


def test_429_is_retried_then_bounded(cluster, clicks, proxy):
    catalog = cluster.catalog(**{"zombi.hot-uri": proxy.url, "zombi.hot-listing-ttl-ms": 0})
    table = catalog.load_table("clicks")
    proxy.faults["segment_429"] = 4
    scan = table.scan()
    assert set(pairs(scan.to_arrow())) == cluster.acked("clicks") and scan.last_plan.cold_only_reason is None

    bounded = cluster.catalog(**{"zombi.hot-uri": proxy.url, "zombi.hot-read-retries": 2}).load_table("clicks")
    proxy.faults["segment_429"] = 10_000
    t0 = time.monotonic()
    scan = bounded.scan()
    assert set(pairs(scan.to_arrow())) == clicks["committed"]
    # Bounded retries, not an endless loop (the slack absorbs a loaded machine).
    assert "429" in scan.last_plan.cold_only_reason and time.monotonic() - t0 < 60
    proxy.faults["segment_429"] = 0
    strict = cluster.catalog(
        **{"zombi.hot-uri": proxy.url, "zombi.hot-read-retries": 0, "zombi.hot-required": "true"}
    ).load_table("clicks")
    proxy.faults["segment_429"] = 10_000
    with pytest.raises(zombi_iceberg.HotUnavailable):
        strict.scan().to_arrow()
    proxy.faults["segment_429"] = 0


def test_tokens():
    c = Cluster(
        node_env={"ZOMBI_NODE__AUTH__CATALOG_TOKEN": CATALOG_TOKEN, "ZOMBI_NODE__AUTH__HOT_TOKEN": HOT_TOKEN}
    )
    proxy = None
    try:
        c.write("auth", events(2, 0))
        c.flush("auth")
        c.write("auth", events(3, 0))
        proxy = FaultProxy(c.node.url)
        catalog = c.catalog(token=CATALOG_TOKEN, hot_token=HOT_TOKEN, **{"zombi.hot-uri": proxy.url})
        scan = catalog.load_table("auth").scan()
        assert scan.count() == 5 and scan.to_arrow().num_rows == 5
        assert proxy.auth and set(proxy.auth) == {f"Bearer {HOT_TOKEN}"}
        # The catalog token opens the hot endpoints too (hot-token defaults to it).
        assert c.catalog(token=CATALOG_TOKEN).load_table("auth").scan().count() == 5
        # A wrong hot token: committed rows, with the reason.
        wrong = c.catalog(token=CATALOG_TOKEN, hot_token="not-the-token-0123456789").load_table("auth").scan()
        assert wrong.to_arrow().num_rows == 2 and "HTTP 403" in wrong.last_plan.cold_only_reason
    finally:
        if proxy:
            proxy.close()
        c.cleanup()


# -- node down, node hanging ---------------------------------------------------------------


def test_node_killed_reads_committed_rows():
    c = Cluster()
    try:
        c.write("gone", events(3, 0) + events(2, 1))
        c.flush("gone")
        committed = set(c.acked("gone"))
        c.write("gone", events(4, 0))
        up = c.catalog()
        loaded = up.load_table("gone")
        assert up.warehouse() == c.warehouse
        assert loaded.scan().count() == len(c.acked("gone"))

        c.node.kill()
        # Table loaded before the node died: the hot listing fails, committed rows only.
        scan = loaded.scan()
        assert set(pairs(scan.to_arrow())) == committed and scan.last_plan.cold_only_reason
        # Catalog that saw the node: the warehouse came from its config.
        table = up.load_table("gone")
        assert table.from_warehouse and set(pairs(table.scan().to_arrow())) == committed
        assert table.scan().count() == len(committed)
        # Catalog made while the node is down: load_catalog does not fail; `warehouse` is used.
        down = zombi_iceberg.load_catalog("zombi", uri=c.node.url, warehouse=c.warehouse)
        table = down.load_table("gone")
        assert table.from_warehouse and set(pairs(table.scan().to_arrow())) == committed
        con = table.scan().to_duckdb("gone")
        assert con.execute("SELECT count(*) FROM gone").fetchone()[0] == len(committed)
        with pytest.raises(zombi_iceberg.NodeUnavailable):
            zombi_iceberg.load_catalog("zombi", uri=c.node.url).load_table("gone")
    finally:
        c.cleanup()


class HangingServer:
    """Accepts connections and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.conns: list[socket.socket] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        self.sock.settimeout(0.1)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
                self.conns.append(conn)
            except OSError:
                continue

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        for conn in self.conns:
            conn.close()
        self.sock.close()


def test_hanging_node_reads_committed_rows_within_the_timeout(cluster, clicks):
    hang = HangingServer()
    timeout_ms = 1000
    try:
        # The catalog itself hangs: load_catalog and load_table each wait one timeout.
        t0 = time.monotonic()
        catalog = zombi_iceberg.load_catalog(
            "zombi", uri=hang.url, warehouse=cluster.warehouse, **{"zombi.planning-timeout-ms": timeout_ms}
        )
        table = catalog.load_table("clicks")
        rows = table.scan().to_arrow()
        elapsed = time.monotonic() - t0
        assert table.from_warehouse and set(pairs(rows)) == clicks["committed"]
        # Bounded, not hanging: the slack absorbs a loaded machine.
        assert elapsed < 2 * timeout_ms / 1000 + 15, elapsed

        # The catalog answered, then the hot API hangs.
        live = cluster.catalog(**{"zombi.hot-uri": hang.url, "zombi.planning-timeout-ms": timeout_ms})
        scan = live.load_table("clicks").scan()
        t0 = time.monotonic()
        rows = scan.to_arrow()
        elapsed = time.monotonic() - t0
        assert set(pairs(rows)) == clicks["committed"] and "timed out" in scan.last_plan.cold_only_reason
        assert elapsed < timeout_ms / 1000 + 15, elapsed
    finally:
        hang.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    sys.exit(pytest.main([__file__, "-v", *sys.argv[1:]]))
