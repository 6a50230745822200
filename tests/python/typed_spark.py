"""Typed tables through Spark SQL with Zombi's plugin, for tests/tests/typed.rs, in one
Spark session:

1. `CREATE TABLE` declares --create (the issue's statement); a statement Zombi cannot
   honour (PARTITIONED BY a double column) is refused. Prints {"created": [[name, type], ...], "refused": …}.
2. Waits for a line on stdin (the test writes events and flushes).
3. Prints, per --read table, its columns, its rows in typed_engines.canon form sorted by
   order_id, and the committed data files read without and with `order_id >= --min-order`;
   per --dead-letters table, its (source_sequence, error, payload) rows.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

# PySpark turns timestamps into naive datetimes in the process's time zone.
os.environ["TZ"] = "UTC"
time.tzset()

sys.path.insert(0, str(Path(__file__).resolve().parent))

from typed_engines import canon  # noqa: E402
from zombi_spark import session  # noqa: E402


def cold_files(spark, table, where):
    return spark.sql(
        f"SELECT count(DISTINCT f) FROM (SELECT input_file_name() AS f FROM {table} {where}) "
        "WHERE f NOT LIKE 'zombi-hot:%'"
    ).collect()[0][0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--uri", required=True)
    ap.add_argument("--create", required=True)
    ap.add_argument("--read", action="append", default=[])
    ap.add_argument("--dead-letters", action="append", default=[])
    ap.add_argument("--min-order", type=int, required=True)
    args = ap.parse_args()
    spark = session({"zombi": args.uri})
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    spark.sql(
        f"CREATE TABLE zombi.zombi.{args.create} (order_id bigint NOT NULL, amount decimal(12,2), "
        "placed_at timestamp, customer struct<id: string, tier: string>, tags array<string>) "
        "TBLPROPERTIES ('zombi.unknown-fields' = 'drop')"
    )
    created = [[f.name, f.dataType.simpleString()] for f in spark.table(f"zombi.zombi.{args.create}").schema.fields]
    try:
        spark.sql("CREATE TABLE zombi.zombi.refused_by_zombi (x double) PARTITIONED BY (x)")
        refused = None
    except Exception as e:  # the refusal's message, for the test to read
        refused = str(e)
    print(json.dumps({"created": created, "refused": refused}), flush=True)
    sys.stdin.readline()
    out = {}
    for table in args.read:
        t = f"zombi.zombi.{table}"
        df = spark.sql(f"SELECT * FROM {t}")
        rows = sorted((canon(r.asDict()) for r in df.collect()), key=lambda r: r["order_id"])
        out[table] = {
            "columns": df.columns,
            "rows": rows,
            "files": cold_files(spark, t, ""),
            "filtered_files": cold_files(spark, t, f"WHERE order_id >= {args.min_order}"),
        }
    for table in args.dead_letters:
        rows = spark.sql(
            f"SELECT source_sequence, error, payload FROM zombi.zombi.{table} ORDER BY sequence"
        ).collect()
        out[table] = {"rows": [list(r) for r in rows]}
    print(json.dumps(out), flush=True)
    spark.stop()


if __name__ == "__main__":
    main()
