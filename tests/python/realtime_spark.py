"""Real-time reads through Spark SQL with the Zombi plugin, and the Python reader beside it,
for tests/tests/realtime.rs. One Spark session for every check.

Phase 1 (node up) prints one JSON line of figures; then the script waits for a line on
stdin (the test has stopped the node) and phase 2 prints the figures read with the node
down and with a node that accepts connections and never answers.

Figures per reader: count, distinct (partition, sequence) pairs, pair_checksum =
sum(partition * 1000003 + sequence), sum_v (payload "v").
"""

import argparse
import json
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins/python/src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from engines import PAIR_FACTOR, duckdb_connect  # noqa: E402

def figures(rows):
    """rows: (partition, sequence, payload) tuples."""
    pairs = [(p, s) for p, s, _ in rows]
    return {
        "count": len(rows),
        "distinct": len(set(pairs)),
        "pair_checksum": sum(p * PAIR_FACTOR + s for p, s in pairs),
        "sum_v": sum(json.loads(x)["v"] for _, _, x in rows if x),
    }


def arrow_figures(table):
    """figures() of an Arrow table with partition, sequence and payload columns."""
    cols = (table.column(c).to_pylist() for c in ("partition", "sequence", "payload"))
    return figures(list(zip(*cols)))


def spark_figures(spark, table):
    rows = spark.sql(f"SELECT partition, sequence, payload FROM {table}").collect()
    out = figures([(r[0], r[1], r[2]) for r in rows])
    # count(*) and count(DISTINCT …) are computed by Spark (count(*) may be answered from
    # file metadata by aggregate push-down).
    out["sql_count"] = spark.sql(f"SELECT count(*) FROM {table}").collect()[0][0]
    out["sql_distinct"] = spark.sql(
        f"SELECT count(DISTINCT partition, sequence) FROM {table}"
    ).collect()[0][0]
    return out


def timed(f):
    t0 = time.monotonic()
    out = f()
    return out, time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--uri", required=True)
    ap.add_argument("--hang-uri", required=True)
    ap.add_argument("--warehouse", required=True)
    ap.add_argument("--table", required=True)
    ap.add_argument("--first-snapshot", type=int, required=True)
    ap.add_argument("--date", required=True)
    ap.add_argument("--hour", type=int, required=True)
    ap.add_argument("--master", default="local[1]")
    ap.add_argument("--phase1-only", action="store_true")
    args = ap.parse_args()

    from zombi_spark import session

    timeout_ms = 2000
    down = {"warehouse": args.warehouse, "zombi.planning-timeout-ms": timeout_ms}
    # The catalog answers but the hot API hangs: planning is bounded, the read is cold-only.
    hot_hang = {"zombi.hot-uri": args.hang_uri, "zombi.planning-timeout-ms": timeout_ms}
    spark = session(
        {
            "zombi": args.uri,
            "zombi_down": args.uri,
            "zombi_hang": args.hang_uri,
            "zombi_hot_hang": args.uri,
            "zombi_cached": args.uri,
        },
        {
            "zombi": {"warehouse": args.warehouse},
            # Spark's catalog cache on (the default users may keep): still exactly once.
            "zombi_cached": {"cache-enabled": "true"},
            "zombi_down": down,
            "zombi_hang": down,
            "zombi_hot_hang": hot_hang,
        },
        master=args.master,
        # Spark's Hadoop catalog: path-based, finds tables by their version-hint.text.
        hadoop={"zombi_hadoop": args.warehouse},
    )
    t = f"zombi.zombi.{args.table}"
    out = {"spark": spark_figures(spark, t)}
    cached = f"zombi_cached.zombi.{args.table}"
    out["spark_cached"] = spark_figures(spark, cached)
    f, secs = timed(lambda: spark_figures(spark, f"zombi_hot_hang.zombi.{args.table}"))
    out["spark_hot_hang"] = dict(f, seconds=secs)
    hour = f"event_date = DATE '{args.date}' AND event_hour = {args.hour}"
    out["spark"]["hour_count"] = spark.sql(f"SELECT count(*) FROM {t} WHERE {hour}").collect()[0][0]
    # Hot files read, by their zombi-hot:// locations.
    hot_files = (
        "SELECT count(DISTINCT f) FROM (SELECT input_file_name() AS f FROM {} WHERE {}) "
        "WHERE f LIKE 'zombi-hot:%'"
    )
    out["spark"]["hot_files"] = spark.sql(hot_files.format(t, "true")).collect()[0][0]
    out["spark"]["hot_files_hour"] = spark.sql(hot_files.format(t, hour)).collect()[0][0]
    mm = spark.sql(f"SELECT min(sequence), max(sequence) FROM {t} WHERE partition = 0").collect()[0]
    out["spark"]["p0_min_max"] = [mm[0], mm[1]]
    out["spark"]["time_travel_count"] = spark.sql(
        f"SELECT count(*) FROM {t} VERSION AS OF {args.first_snapshot}"
    ).collect()[0][0]
    if not args.phase1_only:
        import zombi_iceberg
        from pyiceberg.expressions import And, EqualTo

        cat = zombi_iceberg.load_catalog("zombi", uri=args.uri)
        tbl = cat.load_table(f"zombi.{args.table}")
        out["python"] = arrow_figures(
            tbl.scan(selected_fields=("partition", "sequence", "payload")).to_arrow()
        )
        flt = And(EqualTo("event_date", args.date), EqualTo("event_hour", args.hour))
        scan = tbl.scan(row_filter=flt)
        out["python"]["hour_count"] = scan.to_arrow().num_rows
        out["python"]["hot_segments_hour"] = len(scan.hot_segments())

    # A flush between two queries: the second reads the new snapshot and fewer hot rows,
    # and the same events.
    urllib.request.urlopen(
        urllib.request.Request(f"{args.uri}/tables/{args.table}/flush", method="POST"), timeout=30
    ).read()
    out["spark"]["after_flush"] = spark_figures(spark, t)
    # The cached table still reads the snapshot it loaded, with the hot rows above it.
    out["spark_cached"]["after_flush"] = spark_figures(spark, cached)

    print(json.dumps(out), flush=True)
    if args.phase1_only:
        spark.stop()
        return

    # Phase 2: the test stops the node, then tells us.
    sys.stdin.readline()
    out = {}
    for name in ("zombi", "zombi_down", "zombi_hang", "zombi_hadoop"):
        f, secs = timed(lambda: spark_figures(spark, f"{name}.zombi.{args.table}"))
        f["seconds"] = secs
        out[name] = f
    # Path-based readers on the table folder, through version-hint.text.
    folder = f"{args.warehouse}/zombi/{args.table}"
    from pyiceberg.table import StaticTable

    out["pyiceberg_static"] = arrow_figures(
        StaticTable.from_metadata(folder)
        .scan(selected_fields=("partition", "sequence", "payload"))
        .to_arrow()
    )
    out["duckdb_iceberg_scan"] = figures(
        duckdb_connect().execute(
            f"SELECT partition, sequence, payload FROM iceberg_scan('{folder.removeprefix('file://')}')"
        ).fetchall()
    )
    print(json.dumps(out), flush=True)
    spark.stop()


if __name__ == "__main__":
    main()
