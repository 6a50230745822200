"""Runs Spark SQL against a Zombi node through the plugin and prints one JSON line per query.

    python spark_sql.py "SELECT count(*) FROM zombi.zombi.events" ["SELECT ..."]

Configured by environment variables (only ZOMBI_URI is required):

    ZOMBI_URI                  the node, e.g. http://127.0.0.1:8090
    ZOMBI_WAREHOUSE            warehouse for reads while the node is down (file://..., s3://...)
    ZOMBI_TOKEN                catalog token
    ZOMBI_HOT_TOKEN            hot-segment token (default: ZOMBI_TOKEN)
    ZOMBI_PLANNING_TIMEOUT_MS  bound on every call to the node while planning (default 5000)
    ZOMBI_PLUGIN_JAR           default: ../build/zombi-iceberg.jar next to this file
    ZOMBI_ICEBERG_JAR          default: the iceberg-spark-runtime jar of this Python's
                               snowpark_connect_deps_iceberg package

Each output line is {"sql": ..., "seconds": ..., "rows": [[...], ...]} or, for a failed
query, {"sql": ..., "seconds": ..., "error": "..."}; the first line is
{"session_start_seconds": ...}. Values that JSON cannot hold (dates, timestamps, bytes) are
printed as strings.
"""

import glob
import json
import os
import sys
import time


def iceberg_runtime_jar():
    import snowpark_connect_deps_iceberg

    jars = os.path.join(os.path.dirname(snowpark_connect_deps_iceberg.__file__), "jars")
    found = glob.glob(os.path.join(jars, "iceberg-spark-runtime-3.5_2.12-1.10.2.jar"))
    if not found:
        sys.exit(f"no iceberg-spark-runtime-3.5_2.12-1.10.2.jar in {jars}")
    return found[0]


def session():
    # Spark on loopback only, started as fast as it goes (see /work/shared/ENGINES.md).
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession

    here = os.path.dirname(os.path.abspath(__file__))
    plugin = os.environ.get(
        "ZOMBI_PLUGIN_JAR", os.path.join(here, "..", "build", "zombi-iceberg.jar")
    )
    runtime = os.environ.get("ZOMBI_ICEBERG_JAR") or iceberg_runtime_jar()
    cat = "spark.sql.catalog.zombi"
    builder = (
        SparkSession.builder.master("local[1]")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.extraJavaOptions", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.jars", f"{plugin},{runtime}")
        .config(cat, "org.apache.iceberg.spark.SparkCatalog")
        .config(f"{cat}.catalog-impl", "dev.zombi.iceberg.ZombiCatalog")
        .config(f"{cat}.uri", os.environ["ZOMBI_URI"])
        # Each query loads the table afresh, so it sees every event acknowledged before it.
        .config(f"{cat}.cache-enabled", "false")
    )
    optional = {
        "ZOMBI_WAREHOUSE": "warehouse",
        "ZOMBI_TOKEN": "token",
        "ZOMBI_HOT_TOKEN": "hot-token",
        "ZOMBI_PLANNING_TIMEOUT_MS": "zombi.planning-timeout-ms",
    }
    for env, prop in optional.items():
        if os.environ.get(env):
            builder = builder.config(f"{cat}.{prop}", os.environ[env])
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def plain(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    return str(value)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    started = time.monotonic()
    spark = session()
    print(json.dumps({"session_start_seconds": round(time.monotonic() - started, 3)}), flush=True)
    failed = False
    try:
        for sql in sys.argv[1:]:
            t0 = time.monotonic()
            line = {"sql": sql}
            try:
                rows = spark.sql(sql).collect()
                line["rows"] = [[plain(v) for v in row] for row in rows]
            except Exception as e:  # reported per query, the next ones still run
                line["error"] = f"{type(e).__name__}: {e}"[:2000]
                failed = True
            line["seconds"] = round(time.monotonic() - t0, 3)
            print(json.dumps(line), flush=True)
    finally:
        spark.stop()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
