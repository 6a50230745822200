"""Typed tables through real engines, for tests/tests/typed.rs.

  create  --uri U --table T [--prop k=v ...]   PyIceberg `create_table` with the orders schema
  read    --uri U --table T --min-order N      rows as PyIceberg, DuckDB and Zombi's Python
                                               reader (cold + hot) return them
  evolve  --uri U --table T                    PyIceberg schema changes: add a column, widen
                                               int to long; a rename and a drop (refused);
                                               then zombi.numbers-in-strings = true
  columns --uri U --table T --cols a,b         rows of those columns in PyIceberg and DuckDB

`read` prints one JSON object: per reader, its rows in a canonical form (see `canon`) sorted
by order_id, and for PyIceberg the data files planned with and without `order_id >= N`.
"""

import argparse
import calendar
import datetime
import decimal
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins/python/src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from engines import duckdb_connect  # noqa: E402

def orders_schema():
    from pyiceberg.schema import Schema
    from pyiceberg.types import (
        BooleanType, DateType, DecimalType, DoubleType, IntegerType, ListType, LongType,
        MapType, NestedField, StringType, StructType, TimestamptzType,
    )

    return Schema(
        NestedField(1, "order_id", LongType(), required=True),
        NestedField(2, "amount", DecimalType(12, 2)),
        NestedField(3, "placed_at", TimestamptzType()),
        NestedField(4, "day", DateType()),
        NestedField(5, "customer", StructType(
            NestedField(6, "id", StringType()), NestedField(7, "tier", StringType()))),
        NestedField(8, "tags", ListType(9, StringType(), element_required=True)),
        NestedField(10, "attrs", MapType(11, StringType(), 12, IntegerType(), value_required=False)),
        NestedField(13, "ok", BooleanType()),
        NestedField(14, "ratio", DoubleType()),
        NestedField(15, "qty", IntegerType()),
    )


def micros(ts):
    if ts is None:
        return None
    if ts.tzinfo is not None:
        ts = ts.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return calendar.timegm(ts.timetuple()) * 1_000_000 + ts.microsecond


def canon(r):
    """One row as plain JSON: decimals as their exact text, timestamps as UTC microseconds,
    dates ISO, maps as sorted [key, value] pairs, payload parsed."""
    def struct(s):
        if s is None:
            return None
        s = s.asDict() if hasattr(s, "asDict") else dict(s)
        return {"id": s.get("id"), "tier": s.get("tier")}

    def pairs(m):
        if m is None:
            return None
        items = m.items() if isinstance(m, dict) else m
        return sorted([k, v] for k, v in items)

    out = {
        "order_id": r["order_id"],
        "amount": None if r.get("amount") is None else str(r["amount"]),
        "placed_at": micros(r.get("placed_at")),
        "customer": struct(r.get("customer")),
        "tags": None if r.get("tags") is None else list(r["tags"]),
        "payload": None if r.get("payload") is None else json.loads(r["payload"]),
    }
    for k in ("day", "attrs", "ok", "ratio", "qty", "coupon"):
        if k in r:
            v = r[k]
            out[k] = v.isoformat() if isinstance(v, datetime.date) else pairs(v) if k == "attrs" else v
    return out


def rows_of(table):
    return sorted((canon(r) for r in table.to_pylist()), key=lambda r: r["order_id"])


def create(args):
    from pyiceberg.catalog import load_catalog

    cat = load_catalog("zombi", type="rest", uri=args.uri)
    props = dict(p.split("=", 1) for p in args.prop)
    try:
        t = cat.create_table(f"zombi.{args.table}", schema=orders_schema(), properties=props)
    except Exception as e:  # the refusal, for the test to read
        return {"error": type(e).__name__, "message": str(e)}
    return {"fields": {f.name: f.field_id for f in t.schema().fields},
            "properties": dict(t.properties)}


def read(args):
    from pyiceberg.catalog import load_catalog
    from pyiceberg.expressions import GreaterThanOrEqual

    out = {}
    cat = load_catalog("zombi", type="rest", uri=args.uri)
    tbl = cat.load_table(f"zombi.{args.table}")
    out["pyiceberg"] = {
        "rows": rows_of(tbl.scan().to_arrow()),
        "all_files": len(list(tbl.scan().plan_files())),
        "filtered_files": len(list(tbl.scan(row_filter=GreaterThanOrEqual("order_id", args.min_order)).plan_files())),
        "types": {f.name: str(f.field_type) for f in tbl.schema().fields},
    }
    con = duckdb_connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"ATTACH '' AS z (TYPE iceberg, ENDPOINT '{args.uri}', AUTHORIZATION_TYPE 'none', ACCESS_DELEGATION_MODE 'none')")
    out["duckdb"] = {"rows": rows_of(con.execute(f"SELECT * FROM z.zombi.{args.table}").fetch_arrow_table())}
    import zombi_iceberg

    live = zombi_iceberg.load_catalog("live", uri=args.uri)
    out["python_reader"] = {"rows": rows_of(live.load_table(f"zombi.{args.table}").scan().to_arrow())}
    return out


def evolve(args):
    """Schema changes as an engine commits them: two accepted, two refused."""
    from pyiceberg.catalog import load_catalog
    from pyiceberg.types import LongType, StringType

    cat = load_catalog("zombi", type="rest", uri=args.uri)
    t = cat.load_table(f"zombi.{args.table}")
    out = {}
    with t.update_schema() as u:
        u.add_column("note", StringType())
        u.update_column("qty", field_type=LongType())
    out["types"] = {f.name: str(f.field_type) for f in cat.load_table(f"zombi.{args.table}").schema().fields}
    with cat.load_table(f"zombi.{args.table}").transaction() as tx:
        tx.set_properties({"zombi.numbers-in-strings": "true"})
    out["properties"] = dict(cat.load_table(f"zombi.{args.table}").properties)
    for name, change in (("rename", lambda u: u.rename_column("ratio", "r")),
                         ("drop", lambda u: u.delete_column("ok"))):
        try:
            with cat.load_table(f"zombi.{args.table}").update_schema() as u:
                change(u)
            out[name] = None
        except Exception as e:  # the refusal, for the test to read
            out[name] = str(e)
    return out


def columns(args):
    """Rows of --cols in PyIceberg and DuckDB, sorted by order_id."""
    from pyiceberg.catalog import load_catalog

    cols = args.cols.split(",")
    cat = load_catalog("zombi", type="rest", uri=args.uri)
    t = cat.load_table(f"zombi.{args.table}").scan(selected_fields=tuple(cols)).to_arrow()
    out = {"pyiceberg": sorted([[r[c] for c in cols] for r in t.to_pylist()], key=lambda r: r[0])}
    con = duckdb_connect()
    con.execute(f"ATTACH '' AS z (TYPE iceberg, ENDPOINT '{args.uri}', AUTHORIZATION_TYPE 'none', ACCESS_DELEGATION_MODE 'none')")
    rows = con.execute(f"SELECT {', '.join(cols)} FROM z.zombi.{args.table}").fetchall()
    out["duckdb"] = sorted([list(r) for r in rows], key=lambda r: r[0])
    return out


COMMANDS = {"create": create, "read": read, "evolve": evolve, "columns": columns}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=sorted(COMMANDS))
    p.add_argument("--uri", required=True)
    p.add_argument("--table", required=True)
    p.add_argument("--prop", action="append", default=[])
    p.add_argument("--min-order", type=int, default=0)
    p.add_argument("--cols")
    args = p.parse_args()
    result = COMMANDS[args.command](args)
    json.dump(result, sys.stdout, default=lambda o: str(o) if isinstance(o, decimal.Decimal) else repr(o))
    print()


if __name__ == "__main__":
    main()
