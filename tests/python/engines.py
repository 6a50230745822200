"""Reads a Zombi table through Zombi's Iceberg REST catalog with real engines and prints,
per engine, the same figures as JSON so the Rust integration tests can compare them with
what producers were acknowledged:

  count, distinct (partition, sequence) pairs, pair_checksum = sum(partition*1000003 +
  sequence), sum_v = sum of the payload's "v", and date_count = rows with event_date = --date.

PyIceberg also reports date_files: data files planned for the date filter (partition pruning).
"""

import argparse
import glob
import json
import os
import re
import sys

PAIR_FACTOR = 1000003


def arrow_figures(t):
    """count, distinct, pair_checksum and sum_v of a table read into Arrow."""
    parts = t.column("partition").to_pylist()
    seqs = t.column("sequence").to_pylist()
    return {
        "count": t.num_rows,
        "distinct": len(set(zip(parts, seqs))),
        "pair_checksum": sum(p * PAIR_FACTOR + s for p, s in zip(parts, seqs)),
        "sum_v": sum(json.loads(p)["v"] for p in t.column("payload").to_pylist() if p is not None),
    }


def pyiceberg_stats(args):
    from pyiceberg.catalog import load_catalog
    from pyiceberg.expressions import EqualTo

    props = {"type": "rest", "uri": args.uri}
    if args.token:
        props["token"] = args.token
    if args.s3_endpoint:
        props.update({
            "s3.endpoint": args.s3_endpoint,
            "s3.access-key-id": args.s3_key,
            "s3.secret-access-key": args.s3_secret,
            "s3.region": "us-east-1",
        })
    cat = load_catalog("zombi", **props)
    assert ("zombi",) in cat.list_namespaces(), cat.list_namespaces()
    tbl = cat.load_table(f"zombi.{args.table}")
    scan = tbl.scan(snapshot_id=args.snapshot_id) if args.snapshot_id else tbl.scan()
    out = arrow_figures(scan.to_arrow())
    if args.date:
        flt = EqualTo("event_date", args.date)
        out["date_count"] = tbl.scan(row_filter=flt).to_arrow().num_rows
        out["date_files"] = len(list(tbl.scan(row_filter=flt).plan_files()))
        out["all_files"] = len(list(tbl.scan().plan_files()))
    return out


def duckdb_connect():
    """A DuckDB connection with the httpfs, avro and iceberg extensions loaded from their
    PyPI wheels (never downloaded)."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    for ext in ("httpfs", "avro", "iceberg"):
        mod = __import__(f"duckdb_extension_{ext}")
        path = glob.glob(os.path.join(os.path.dirname(mod.__file__), "extensions", "*", f"{ext}.duckdb_extension"))
        con.execute(f"LOAD '{path[0]}'")
    return con


def duckdb_stats(args):
    con = duckdb_connect()
    if args.s3_endpoint:
        endpoint = re.sub(r"^https?://", "", args.s3_endpoint)
        con.execute(
            f"CREATE SECRET (TYPE s3, KEY_ID '{args.s3_key}', SECRET '{args.s3_secret}', "
            f"REGION 'us-east-1', ENDPOINT '{endpoint}', URL_STYLE 'path', USE_SSL false)"
        )
    auth = f"TOKEN '{args.token}'" if args.token else "AUTHORIZATION_TYPE 'none'"
    con.execute(
        f"ATTACH '' AS z (TYPE iceberg, ENDPOINT '{args.uri}', {auth}, ACCESS_DELEGATION_MODE 'none')"
    )
    t = f"z.zombi.{args.table}"
    row = con.execute(
        f"SELECT count(*), count(DISTINCT (partition, sequence)), "
        f"coalesce(sum(partition::BIGINT * {PAIR_FACTOR} + sequence), 0), "
        f"coalesce(sum(CAST(regexp_extract(payload, '\"v\":\\s*(-?[0-9]+)', 1) AS BIGINT)), 0) FROM {t}"
    ).fetchone()
    out = {"count": row[0], "distinct": row[1], "pair_checksum": int(row[2]), "sum_v": int(row[3])}
    if args.date:
        out["date_count"] = con.execute(
            f"SELECT count(*) FROM {t} WHERE event_date = DATE '{args.date}'"
        ).fetchone()[0]
    return out


def spark_stats(args):
    from zombi_spark import aws_bundle_jar, builder, iceberg_runtime_jar

    c = "spark.sql.catalog.zombi"
    b = (builder("local[1]", [iceberg_runtime_jar()]).appName("zombi-engines")
         .config(c, "org.apache.iceberg.spark.SparkCatalog")
         .config(f"{c}.type", "rest")
         .config(f"{c}.uri", args.uri))
    if args.token:
        b = b.config(f"{c}.token", args.token)
    if args.s3_endpoint:
        # The catalog vends no storage settings: the same ones as PyIceberg's, through
        # Iceberg's S3FileIO (the AWS SDK comes from the aws-bundle jar).
        aws_bundle_jar(required=True)
        for k, v in {
            "io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
            "s3.endpoint": args.s3_endpoint,
            "s3.path-style-access": "true",
            "s3.access-key-id": args.s3_key,
            "s3.secret-access-key": args.s3_secret,
            "client.region": "us-east-1",
        }.items():
            b = b.config(f"{c}.{k}", v)
    spark = b.getOrCreate()
    try:
        t = f"zombi.zombi.{args.table}"
        out = spark_sql_figures(spark, t, args.date)
        tables = [r.tableName for r in spark.sql("SHOW TABLES IN zombi.zombi").collect()]
        assert args.table in tables, tables
        return out
    finally:
        spark.stop()


def spark_sql_figures(spark, t, date):
    row = spark.sql(
        f"SELECT count(*), count(DISTINCT partition, sequence), "
        f"coalesce(sum(CAST(partition AS BIGINT) * {PAIR_FACTOR} + sequence), 0), "
        f"coalesce(sum(CAST(get_json_object(payload, '$.v') AS BIGINT)), 0) FROM {t}"
    ).collect()[0]
    out = {"count": row[0], "distinct": row[1], "pair_checksum": int(row[2]), "sum_v": int(row[3])}
    if date:
        out["date_count"] = spark.sql(
            f"SELECT count(*) FROM {t} WHERE event_date = DATE '{date}'"
        ).collect()[0][0]
    return out


def zombi_python_stats(args):
    """The real-time Python reader (plugins/python): committed + hot rows."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "plugins", "python", "src"))
    import zombi_iceberg

    props = {}
    if args.token:
        props["token"] = args.token
    catalog = zombi_iceberg.load_catalog("zombi", uri=args.uri, **props)
    t = catalog.load_table(args.table).scan().to_arrow()
    out = arrow_figures(t)
    if args.date:
        out["date_count"] = sum(1 for d in t.column("event_date").to_pylist() if str(d) == args.date)
    return out


def zombi_spark_stats(args):
    """Spark SQL with the real-time plugin (plugins/iceberg-java): committed + hot rows."""
    from zombi_spark import session

    props = {"token": args.token} if args.token else {}
    spark = session({"zombi": args.uri}, {"zombi": props})
    try:
        return spark_sql_figures(spark, f"zombi.zombi.{args.table}", args.date)
    finally:
        spark.stop()


ENGINES = {
    "pyiceberg": pyiceberg_stats,
    "duckdb": duckdb_stats,
    "spark": spark_stats,
    "zombi_python": zombi_python_stats,
    "zombi_spark": zombi_spark_stats,
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--uri", required=True)
    p.add_argument("--table", required=True)
    p.add_argument("--engines", default="pyiceberg,duckdb")
    p.add_argument("--date")
    p.add_argument("--token")
    p.add_argument("--snapshot-id", type=int)
    p.add_argument("--s3-endpoint")
    p.add_argument("--s3-key")
    p.add_argument("--s3-secret")
    args = p.parse_args()
    result = {}
    for name in args.engines.split(","):
        result[name] = ENGINES[name](args)
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
