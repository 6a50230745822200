"""SQL over Zombi's tables with DuckDB, configured from the environment compose.yaml sets.

    docker compose run --rm query                        # interactive prompt
    docker compose run --rm query "SELECT count(*) FROM clicks"
    echo "SHOW TABLES" | docker compose run --rm -T query

Zombi's REST catalog is attached as `zombi` and its namespace is the default schema, so a
table is just `clicks` (or `zombi.zombi.clicks`). ZOMBI_CATALOG_URI may name several nodes,
separated by commas (an active node and its standby): the query reads the catalog of the
active one, or of a standby if none is active when it starts. PyIceberg is installed beside
DuckDB: `docker compose run --rm --entrypoint /opt/query/bin/python query` and
`zombi_query.pyiceberg_catalog()` give a configured PyIceberg catalog.
"""

import glob
import os
import sys


def env(name, default=None):
    value = os.environ.get(name, default)
    if value is None:
        sys.exit(f"query: the environment variable {name} is not set")
    return value


def sql_literal(value):
    return "'" + value.replace("'", "''") + "'"


def catalog_uri():
    """A node of ZOMBI_CATALOG_URI to read the catalog from: the active one (its /health
    answers 200), else one that stands by (a standby serves catalog reads of the committed
    tables too), else the first."""
    import json
    import urllib.error
    import urllib.request

    uris = [u.strip().rstrip("/") for u in env("ZOMBI_CATALOG_URI").split(",") if u.strip()]
    if len(uris) == 1:
        return uris[0]
    standby = None
    for uri in uris:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2):
                return uri
        except urllib.error.HTTPError as e:  # 503: a standby, or a node starting or stopping
            try:
                if standby is None and json.load(e).get("role") == "standby":
                    standby = uri
            except ValueError:
                pass
        except OSError:  # not running
            pass
    if standby is None:
        print(f"query: no node of {', '.join(uris)} answers; trying {uris[0]}", file=sys.stderr)
    return standby or uris[0]


def duckdb_connection():
    import duckdb

    con = duckdb.connect()
    # Extensions come from the duckdb-extension-* wheels; never download at query time.
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    for ext in ("httpfs", "avro", "iceberg"):
        module = __import__(f"duckdb_extension_{ext}")
        pattern = os.path.join(os.path.dirname(module.__file__), "extensions", "*", f"{ext}.duckdb_extension")
        con.execute(f"LOAD {sql_literal(glob.glob(pattern)[0])}")
    endpoint = env("S3_ENDPOINT")
    use_ssl = "true" if endpoint.startswith("https://") else "false"
    host = endpoint.split("://", 1)[-1].rstrip("/")
    con.execute(
        "CREATE SECRET warehouse (TYPE s3, "
        f"KEY_ID {sql_literal(env('S3_ACCESS_KEY'))}, SECRET {sql_literal(env('S3_SECRET_KEY'))}, "
        f"REGION {sql_literal(env('S3_REGION', 'us-east-1'))}, ENDPOINT {sql_literal(host)}, "
        f"URL_STYLE 'path', USE_SSL {use_ssl})"
    )
    token = os.environ.get("ZOMBI_CATALOG_TOKEN")
    auth = f"TOKEN {sql_literal(token)}" if token else "AUTHORIZATION_TYPE 'none'"
    con.execute(
        f"ATTACH '' AS zombi (TYPE iceberg, ENDPOINT {sql_literal(catalog_uri())}, "
        f"{auth}, ACCESS_DELEGATION_MODE 'none')"
    )
    con.execute(f"USE zombi.{env('ZOMBI_NAMESPACE', 'zombi')}")
    return con


def pyiceberg_catalog():
    from pyiceberg.catalog import load_catalog

    props = {
        "type": "rest",
        "uri": catalog_uri(),
        "s3.endpoint": env("S3_ENDPOINT"),
        "s3.access-key-id": env("S3_ACCESS_KEY"),
        "s3.secret-access-key": env("S3_SECRET_KEY"),
        "s3.region": env("S3_REGION", "us-east-1"),
    }
    if os.environ.get("ZOMBI_CATALOG_TOKEN"):
        props["token"] = os.environ["ZOMBI_CATALOG_TOKEN"]
    return load_catalog("zombi", **props)


def run(con, sql):
    """Runs one or more statements and prints the result of each that returns rows."""
    import duckdb

    try:
        for statement in con.extract_statements(sql):
            result = con.sql(statement.query)
            if result is not None:
                result.show(max_rows=100, max_width=200)
        return True
    except duckdb.Error as e:
        print(f"error: {e}", file=sys.stderr)
        return False


def prompt(con):
    print("Zombi tables over DuckDB. End statements with `;`; `SHOW TABLES;` lists them; Ctrl-D quits.")
    buffer = ""
    while True:
        try:
            line = input("zombi> " if not buffer else "  ...> ")
        except EOFError:
            print()
            return
        except KeyboardInterrupt:
            print()
            buffer = ""
            continue
        buffer += line + "\n"
        if buffer.rstrip().endswith(";"):
            run(con, buffer)
            buffer = ""


def main():
    con = duckdb_connection()
    if len(sys.argv) > 1:
        ok = all([run(con, sql) for sql in sys.argv[1:]])
        sys.exit(0 if ok else 1)
    if sys.stdin.isatty():
        prompt(con)
    else:
        sys.exit(0 if run(con, sys.stdin.read()) else 1)


if __name__ == "__main__":
    main()
