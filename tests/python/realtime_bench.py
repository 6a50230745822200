"""Acknowledgement → visible to a query, through each reader, next to the cold path.

For each reader in turn, `--samples` times: one event is written through the edge, and from
its acknowledgement on the reader queries `WHERE partition = 0 AND sequence = <its sequence>`
until the row is there. The figure is the time from the acknowledgement to the end of the
first query that returned it (so it includes that query's own duration), after one warm-up
query per reader. Readers:

  cold     plain PyIceberg on the REST catalog (committed snapshots only: the flush path)
  python   zombi_iceberg (PyIceberg + hot segments)
  spark    Spark SQL with the dev.zombi.iceberg.ZombiCatalog plugin
  trino_cold  Trino's Iceberg connector on the REST catalog (committed snapshots only)
  trino    Trino with the zombi connector (plugins/trino)

The Trino readers need --trino (a server with the zombi plugin installed, scripts/trino.sh).

Prints one JSON line: {"<reader>": {"p50_ms", "p99_ms", "samples", "query_ms_p50"}}.
"""

import argparse
import json
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "plugins/python/src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

DEADLINE_S = 60.0


def post_event(edge: str, table: str, i: int) -> int:
    body = json.dumps({"payload": {"probe": i}, "partition": 0}).encode()
    req = urllib.request.Request(
        f"{edge}/tables/{table}", data=body, headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)["sequence"]


def trino_query(url: str, sql: str):
    req = urllib.request.Request(f"{url}/v1/statement", data=sql.encode(), headers={"X-Trino-User": "bench"})
    with urllib.request.urlopen(req, timeout=60) as r:
        reply = json.load(r)
    rows = []
    while True:
        rows.extend(reply.get("data", []))
        if "error" in reply:
            raise SystemExit(f"trino: {sql}: {reply['error'].get('message')}")
        if "nextUri" not in reply:
            return rows
        with urllib.request.urlopen(reply["nextUri"], timeout=60) as r:
            reply = json.load(r)


def percentile(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


def measure(name, query, edge, table, samples):
    """query(sequence) -> rows found; runs until found or the deadline."""
    latencies, query_times = [], []
    # Warm-up (class loading, the first plan): not a figure.
    query(-1)
    for i in range(samples):
        seq = post_event(edge, table, i)
        acked = time.monotonic()
        while True:
            t0 = time.monotonic()
            found = query(seq)
            query_times.append(time.monotonic() - t0)
            if found:
                break
            if time.monotonic() - acked > DEADLINE_S:
                raise SystemExit(f"{name}: sequence {seq} not visible within {DEADLINE_S} s")
        latencies.append(time.monotonic() - acked)
        time.sleep(0.05)
    return {
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "samples": len(latencies),
        "query_ms_p50": percentile(query_times, 0.5) * 1000,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--edge", required=True)
    ap.add_argument("--node", required=True)
    ap.add_argument("--table", default="realtime")
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--readers", default="cold,python,spark")
    ap.add_argument("--trino", help="Trino server URL for the trino_cold and trino readers")
    args = ap.parse_args()
    readers = args.readers.split(",")
    # The table must exist before the readers load it.
    post_event(args.edge, args.table, -1)
    ns_table = f"zombi.{args.table}"
    out = {}

    from pyiceberg.catalog import load_catalog
    from pyiceberg.expressions import And, EqualTo

    def row_filter(seq):
        return And(EqualTo("partition", 0), EqualTo("sequence", seq))

    deadline = time.monotonic() + DEADLINE_S
    while True:
        try:
            plain = load_catalog("cold", type="rest", uri=args.node)
            cold_table = plain.load_table(ns_table)
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)

    if "cold" in readers:

        def cold(seq):
            cold_table.refresh()
            return cold_table.scan(row_filter=row_filter(seq)).to_arrow().num_rows > 0

        out["cold"] = measure("cold", cold, args.edge, args.table, args.samples)

    if "python" in readers:
        import zombi_iceberg

        cat = zombi_iceberg.load_catalog("zombi", uri=args.node, **{"zombi.hot-listing-ttl-ms": 0})

        def python(seq):
            t = cat.load_table(ns_table)
            return t.scan(row_filter=row_filter(seq)).to_arrow().num_rows > 0

        out["python"] = measure("python", python, args.edge, args.table, args.samples)

    if "spark" in readers:
        from zombi_spark import session

        spark = session({"zombi": args.node})
        try:

            def spark_query(seq):
                q = f"SELECT count(*) FROM zombi.zombi.{args.table} WHERE partition = 0 AND sequence = {seq}"
                return spark.sql(q).collect()[0][0] > 0

            out["spark"] = measure("spark", spark_query, args.edge, args.table, args.samples)
        finally:
            spark.stop()

    for reader, connector in [("trino_cold", "iceberg"), ("trino", "zombi")]:
        if reader not in readers:
            continue
        if not args.trino:
            raise SystemExit(f"{reader}: --trino is required")
        catalog = f"bench_{reader}_{int(time.time() * 1000)}"
        trino_query(
            args.trino,
            f"CREATE CATALOG {catalog} USING {connector} WITH ("
            f"\"iceberg.catalog.type\" = 'rest', \"iceberg.rest-catalog.uri\" = '{args.node}', "
            f"\"fs.native-local.enabled\" = 'true', \"local.location\" = '/')",
        )
        try:

            def trino_reader(seq, catalog=catalog):
                q = f"SELECT count(*) FROM {catalog}.zombi.{args.table} WHERE partition = 0 AND sequence = {seq}"
                return trino_query(args.trino, q)[0][0] > 0

            out[reader] = measure(reader, trino_reader, args.edge, args.table, args.samples)
        finally:
            trino_query(args.trino, f"DROP CATALOG {catalog}")

    print(json.dumps(out))


if __name__ == "__main__":
    main()
