"""Partition specs of a user's choice, for tests/tests/partitions.rs, in one Spark session:

1. Declares `--spark-table` with Spark SQL (`PARTITIONED BY (days(event_time), bucket(4,
   customer_id))`) and `--pyiceberg-table` with PyIceberg's `partition_spec` (identity of
   `region`); tries declarations Zombi refuses. Prints {"refused": {...}}.
2. Waits for a line on stdin. `evolve` adds `day(event_time)` to the PyIceberg table's spec
   (and tries a field Zombi refuses) and prints {"evolved": spec id, "refused": message};
   `read` goes on to 3.
3. Prints, per table, what each engine reads with and without --where (a SQL filter, the
   same as --pyiceberg-where in PyIceberg's syntax): rows (count, sum of n), the committed data
   files each planner keeps (PyIceberg, DuckDB, Iceberg Java under Spark), the hot segments
   the real-time readers keep (Python, and Zombi's Spark plugin), and every committed file
   checked row by row against its partition tuple with PyIceberg's own transforms.
"""

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

os.environ["TZ"] = "UTC"
time.tzset()

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins" / "python" / "src"))

from engines import duckdb_connect  # noqa: E402
from zombi_spark import session  # noqa: E402


def pyiceberg_catalog(uri):
    from pyiceberg.catalog import load_catalog

    return load_catalog("zombi", type="rest", uri=uri)


def declare_pyiceberg(uri, table):
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.schema import Schema
    from pyiceberg.transforms import IdentityTransform
    from pyiceberg.types import DoubleType, LongType, NestedField, StringType

    cat = pyiceberg_catalog(uri)
    schema = Schema(
        NestedField(1, "region", StringType(), required=False),
        NestedField(2, "n", LongType(), required=False),
        NestedField(3, "price", DoubleType(), required=False),
    )
    cat.create_table(
        f"zombi.{table}",
        schema=schema,
        partition_spec=PartitionSpec(PartitionField(1, 1000, IdentityTransform(), "region")),
    )
    try:
        cat.create_table(
            f"zombi.{table}_refused",
            schema=schema,
            partition_spec=PartitionSpec(PartitionField(3, 1000, IdentityTransform(), "price")),
        )
        return None
    except Exception as e:  # the refusal's message, for the test to read
        return str(e)


def evolve(uri, table):
    from pyiceberg.transforms import DayTransform, IdentityTransform

    tbl = pyiceberg_catalog(uri).load_table(f"zombi.{table}")
    try:
        with tbl.update_spec() as u:
            u.add_field("price", IdentityTransform(), "price")
        refused = None
    except Exception as e:
        refused = str(e)
    with tbl.update_spec() as u:
        u.add_field("event_time", DayTransform(), "event_day")
    tbl = pyiceberg_catalog(uri).load_table(f"zombi.{table}")
    return {"evolved": tbl.metadata.default_spec_id, "refused": refused}


def check_partitions(tbl):
    """Every committed file's rows, transformed by PyIceberg, equal the file's partition tuple."""
    import datetime

    import pyarrow.parquet as pq
    from pyiceberg.types import TimestampType, TimestamptzType

    epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)

    schema = tbl.schema()
    specs = tbl.specs()
    files_per_spec = {}
    for task in tbl.scan().plan_files():
        f = task.file
        spec = specs[f.spec_id]
        files_per_spec[f.spec_id] = files_per_spec.get(f.spec_id, 0) + 1
        path = f.file_path.removeprefix("file://")
        rows = pq.read_table(path).to_pylist()
        for i, pf in enumerate(spec.fields):
            want = f.partition[i]
            source = schema.find_field(pf.source_id)
            fn = pf.transform.transform(source.field_type)
            for row in rows:
                value = row[source.name]
                if isinstance(source.field_type, (TimestampType, TimestamptzType)):
                    value = (value - epoch) // datetime.timedelta(microseconds=1)
                got = fn(value)
                assert got == want, f"{f.file_path}: {pf.name} of {row[source.name]!r} is {got!r}, the file says {want!r}"
    return files_per_spec


def arrow_rows(scan):
    """[rows, sum of n] of a scan."""
    t = scan.to_arrow()
    return [t.num_rows, sum(v for v in t.column("n").to_pylist() if v is not None)]


def pyiceberg_side(uri, table, where):
    from pyiceberg.expressions import parser

    tbl = pyiceberg_catalog(uri).load_table(f"zombi.{table}")
    flt = parser.parse(where)
    return {
        "rows": arrow_rows(tbl.scan()),
        "filtered_rows": arrow_rows(tbl.scan(row_filter=flt)),
        "files": len(list(tbl.scan().plan_files())),
        "filtered_files": len(list(tbl.scan(row_filter=flt).plan_files())),
        "files_per_spec": check_partitions(tbl),
    }


def zombi_python_side(uri, table, where):
    import zombi_iceberg
    from pyiceberg.expressions import parser

    tbl = zombi_iceberg.load_catalog("zombi", uri=uri).load_table(table)
    flt = parser.parse(where)
    return {
        "rows": arrow_rows(tbl.scan()),
        "filtered_rows": arrow_rows(tbl.scan(row_filter=flt)),
        "segments": len(tbl.scan().hot_segments()),
        "filtered_segments": len(tbl.scan(row_filter=flt).hot_segments()),
    }


def duckdb_side(uri, table, where):
    con = duckdb_connect()
    con.execute(f"ATTACH '' AS z (TYPE iceberg, ENDPOINT '{uri}', AUTHORIZATION_TYPE 'none', ACCESS_DELEGATION_MODE 'none')")
    t = f"z.zombi.{table}"
    def rows(sql):
        r = con.execute(sql).fetchone()
        return [r[0], int(r[1] or 0)]
    def files(sql):
        plan = "\n".join(str(r[1]) for r in con.execute(f"EXPLAIN ANALYZE {sql}").fetchall())
        m = re.search(r"Total Files Read:\s*(\d+)", plan)
        return int(m.group(1)) if m else None
    return {
        "rows": rows(f"SELECT count(*), sum(n) FROM {t}"),
        "filtered_rows": rows(f"SELECT count(*), sum(n) FROM {t} WHERE {where}"),
        "files": files(f"SELECT n FROM {t}"),
        "filtered_files": files(f"SELECT n FROM {t} WHERE {where}"),
    }


def spark_side(spark, table, where, iceberg_where):
    """Spark SQL with Zombi's plugin (committed and hot rows), and the files and segments Iceberg
    Java plans (through the plugin's table) for `iceberg_where`, (column, value): equality."""
    t = f"zombi.zombi.{table}"
    def rows(sql):
        r = spark.sql(sql).collect()[0]
        return [r[0], int(r[1] or 0)]
    jvm = spark._jvm
    loaded = jvm.org.apache.iceberg.spark.Spark3Util.loadIcebergTable(spark._jsparkSession, t)
    def planned(expr):
        scan = loaded.newScan()
        if expr is not None:
            scan = scan.filter(expr)
        it = scan.planFiles().iterator()
        cold = hot = 0
        while it.hasNext():
            location = it.next().file().location()
            if location.startswith("zombi-hot:"):
                hot += 1
            else:
                cold += 1
        return cold, hot
    column, value = iceberg_where
    expr = jvm.org.apache.iceberg.expressions.Expressions.equal(column, value)
    all_cold, all_hot = planned(None)
    some_cold, some_hot = planned(expr)
    return {
        "rows": rows(f"SELECT count(*), sum(n) FROM {t}"),
        "filtered_rows": rows(f"SELECT count(*), sum(n) FROM {t} WHERE {where}"),
        "files": all_cold,
        "filtered_files": some_cold,
        "segments": all_hot,
        "filtered_segments": some_hot,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--uri", required=True)
    ap.add_argument("--spark-table", required=True)
    ap.add_argument("--pyiceberg-table", required=True)
    args = ap.parse_args()
    spark = session({"zombi": args.uri})
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    spark.sql(
        f"CREATE TABLE zombi.zombi.{args.spark_table} (customer_id string, n bigint, event_time timestamp) "
        "PARTITIONED BY (days(event_time), bucket(4, customer_id))"
    )
    refused = {"pyiceberg": declare_pyiceberg(args.uri, args.pyiceberg_table)}
    try:
        spark.sql(f"CREATE TABLE zombi.zombi.{args.spark_table}_refused (x int, payload string) PARTITIONED BY (payload)")
        refused["spark"] = None
    except Exception as e:
        refused["spark"] = str(e)
    print(json.dumps({"refused": refused}), flush=True)

    while True:
        command = sys.stdin.readline().strip()
        if command == "evolve":
            print(json.dumps(evolve(args.uri, args.pyiceberg_table)), flush=True)
        elif command == "read":
            break
        else:
            raise SystemExit(f"unknown command {command!r}")

    out = {}
    # (table, SQL filter, PyIceberg filter, Iceberg Java equality)
    for table, where, pyi_where, java in [
        (args.spark_table, "customer_id = 'c3'", "customer_id == 'c3'", ("customer_id", "c3")),
        (args.pyiceberg_table, "region = 'r1'", "region == 'r1'", ("region", "r1")),
    ]:
        out[table] = {
            "pyiceberg": pyiceberg_side(args.uri, table, pyi_where),
            "zombi_python": zombi_python_side(args.uri, table, pyi_where),
            "duckdb": duckdb_side(args.uri, table, where),
            "spark": spark_side(spark, table, where, java),
        }
    print(json.dumps(out), flush=True)
    spark.stop()


if __name__ == "__main__":
    main()
