"""One Spark session with Zombi's Iceberg plugin (plugins/iceberg-java) for the tests and
the bench: one `dev.zombi.iceberg.ZombiCatalog` catalog per entry of `catalogs`
(name → node URI), configured as docs/realtime.md tells users to.
"""

import glob
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PLUGIN_JAR = REPO / "plugins/iceberg-java/build/zombi-iceberg.jar"
# Jars no PyPI package carries, fetched by scripts/venv.sh (`just venv`), pinned by sha256.
JARS = Path(os.environ.get("ZOMBI_JARS") or Path.home() / ".cache/zombi-jars")
# The AWS SDK for Iceberg's S3FileIO, so Spark reads S3 warehouses (see scripts/venv.sh for
# why 1.10.1 beside the 1.10.2 runtime).
AWS_BUNDLE_JAR = JARS / "iceberg-aws-bundle-1.10.1.jar"


def iceberg_runtime_jar():
    """Iceberg's Spark runtime jar, from the venv's snowpark-connect-deps-iceberg package."""
    import snowpark_connect_deps_iceberg

    jars = Path(snowpark_connect_deps_iceberg.__file__).parent / "jars"
    found = glob.glob(str(jars / "iceberg-spark-runtime-3.5_2.12-*.jar"))
    if not found:
        raise SystemExit(f"no iceberg-spark-runtime jar in {jars}: run `just venv`")
    return found[0]


def aws_bundle_jar(required=False):
    """Iceberg's AWS bundle jar (S3FileIO's AWS SDK) if `just venv` fetched it, else None;
    with `required`, its absence stops the caller."""
    if AWS_BUNDLE_JAR.exists():
        return AWS_BUNDLE_JAR
    if required:
        raise SystemExit(f"{AWS_BUNDLE_JAR} missing (Spark needs it for S3): run `just venv`")
    return None


def builder(master, jars):
    """A SparkSession builder on loopback, started as fast as it goes (docs/engines.md).
    Iceberg's AWS bundle joins `jars` when present, so S3 warehouses read too."""
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession

    aws = aws_bundle_jar()
    jars = list(jars) + ([aws] if aws else [])
    return (
        SparkSession.builder.master(master)
        .config("spark.jars", ",".join(str(j) for j in jars))
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.driver.extraJavaOptions", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
        .config("spark.executor.extraJavaOptions", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
    )


def session(catalogs, props=None, master="local[1]", hadoop=None):
    """`catalogs`: name → node URI; `props`: name → {catalog property: value}; `hadoop`:
    name → warehouse URI of a plain Iceberg Hadoop catalog (path-based, no node)."""
    if not PLUGIN_JAR.exists():
        raise SystemExit(f"{PLUGIN_JAR} missing: run `just plugin`")
    b = builder(master, [PLUGIN_JAR, iceberg_runtime_jar()])
    for name, uri in catalogs.items():
        c = f"spark.sql.catalog.{name}"
        b = (
            b.config(c, "org.apache.iceberg.spark.SparkCatalog")
            .config(f"{c}.catalog-impl", "dev.zombi.iceberg.ZombiCatalog")
            .config(f"{c}.uri", uri)
            # Each query loads the table afresh (docs/realtime.md).
            .config(f"{c}.cache-enabled", "false")
        )
        for k, v in (props or {}).get(name, {}).items():
            b = b.config(f"{c}.{k}", str(v))
    for name, warehouse in (hadoop or {}).items():
        c = f"spark.sql.catalog.{name}"
        b = (
            b.config(c, "org.apache.iceberg.spark.SparkCatalog")
            .config(f"{c}.type", "hadoop")
            .config(f"{c}.warehouse", warehouse)
        )
    spark = b.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
