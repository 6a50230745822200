"""Real-time PyIceberg reads of Zombi tables.

    import zombi_iceberg
    catalog = zombi_iceberg.load_catalog("zombi", uri="http://127.0.0.1:8090")
    table = catalog.load_table("events")          # namespace zombi by default
    rows = table.scan(row_filter="event_hour = 9").to_arrow()

Scans return the rows of the table's current snapshot plus the node's hot (acknowledged,
not yet committed) rows above the snapshot's watermarks: every acknowledged event exactly
once. When the node does not answer, the committed rows only.
"""

from zombi_iceberg.catalog import ZombiCatalog, load_catalog
from zombi_iceberg.errors import HotUnavailable, NodeUnavailable, SnapshotTooOld, ZombiReadError
from zombi_iceberg.table import HOT_OPTION, HotPlan, ZombiScan, ZombiTable

__all__ = [
    "HOT_OPTION",
    "HotPlan",
    "HotUnavailable",
    "NodeUnavailable",
    "SnapshotTooOld",
    "ZombiCatalog",
    "ZombiReadError",
    "ZombiScan",
    "ZombiTable",
    "load_catalog",
]

__version__ = "0.1.0"
