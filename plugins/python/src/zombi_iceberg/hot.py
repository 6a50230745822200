"""The node's hot-segment API (docs/realtime.md): listing, segment reads, and the listing's
translation into Iceberg data files so PyIceberg's own evaluators can prune it."""

from __future__ import annotations

import decimal
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence
from urllib.parse import quote

import requests
from pyiceberg.conversions import to_bytes
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
from pyiceberg.partitioning import PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.typedef import Record
from pyiceberg.types import (
    BooleanType,
    DateType,
    DecimalType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    PrimitiveType,
    StringType,
    TimestampType,
    TimestamptzType,
    TimeType,
)

from zombi_iceberg._http import mount_timeout
from zombi_iceberg.errors import HotUnavailable, SnapshotTooOld


WATERMARK_PREFIX = "zombi.watermark."

# Types whose bounds the node reports as JSON numbers in Iceberg's representation. Bounds of
# any other column are ignored even if present: pruning on them would be unsound.
_BOUNDED_TYPES = (IntegerType, LongType, FloatType, DoubleType, DateType, TimestampType, TimestamptzType)



def snapshot_watermarks(summary: Mapping[str, Any] | None) -> dict[int, int] | None:
    """The watermark map of a snapshot summary, or None when the summary carries none."""
    if summary is None:
        return None
    props = getattr(summary, "additional_properties", summary)
    marks = {}
    for key, value in props.items():
        if key.startswith(WATERMARK_PREFIX):
            marks[int(key[len(WATERMARK_PREFIX) :])] = int(value)
    return marks or None


def watermarks_param(marks: Mapping[int, int]) -> str:
    return ",".join(f"{p}:{marks[p]}" for p in sorted(marks))


@dataclass
class Listing:
    """One answer of `GET /tables/{t}/hot/segments`, shared by every read of the same
    (table, snapshot) while it is fresh, with the segment files read so far."""

    key: tuple[Any, ...]
    body: dict[str, Any]
    fetched_at: float
    blobs: dict[str, bytes] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def segments(self) -> list[dict[str, Any]]:
        return self.body.get("segments") or []


class HotClient:
    """Talks to one node's hot API with its own bounded session and the hot token."""

    def __init__(
        self,
        base_uri: str,
        token: str | None,
        timeout_s: float,
        listing_ttl_s: float = 2.0,
        read_retries: int = 20,
        read_concurrency: int = 2,
    ) -> None:
        self.base_uri = base_uri.rstrip("/")
        self.timeout_s = timeout_s
        self.listing_ttl_s = listing_ttl_s
        self.read_retries = read_retries
        self.read_concurrency = max(1, read_concurrency)
        self._session = mount_timeout(requests.Session(), timeout_s, pool_maxsize=max(10, self.read_concurrency))
        if token:
            self._session.headers["Authorization"] = f"Bearer {token}"
        self._cache: dict[tuple[Any, ...], Listing] = {}
        self._cache_lock = threading.Lock()

    def close(self) -> None:
        self._session.close()

    # -- listing ---------------------------------------------------------------------------

    def list_segments(self, table: str, snapshot_id: int | None, marks: Mapping[int, int]) -> Listing:
        """The hot segments above `marks`. Raises SnapshotTooOld on 410, HotUnavailable on any
        other failure."""
        param = watermarks_param(marks)
        key = (table, snapshot_id, param)
        now = time.monotonic()
        with self._cache_lock:
            for k in [k for k, v in self._cache.items() if now - v.fetched_at > self.listing_ttl_s]:
                del self._cache[k]
            if (hit := self._cache.get(key)) is not None:
                return hit
        # ':' and ',' are legal in a query string; written as is, as in the API's examples.
        url = f"{self.base_uri}/tables/{quote(table, safe='')}/hot/segments?watermarks={param}"
        try:
            resp = self._session.get(url)
        except requests.RequestException as exc:
            raise HotUnavailable(f"hot listing of {table}: {exc}") from exc
        if resp.status_code == 410:
            raise SnapshotTooOld(f"hot listing of {table} at watermarks {param!r}: {_short(resp)}")
        if resp.status_code != 200:
            raise HotUnavailable(f"hot listing of {table}: HTTP {resp.status_code}: {_short(resp)}")
        try:
            body = resp.json()
            segments = body.get("segments")
            if not isinstance(segments, list):
                raise ValueError("no segments list")
        except ValueError as exc:
            raise HotUnavailable(f"hot listing of {table}: malformed answer: {exc}") from exc
        listing = Listing(key=key, body=body, fetched_at=time.monotonic())
        with self._cache_lock:
            # A concurrent reader may have listed first: keep one hot set per key.
            listing = self._cache.setdefault(key, listing)
        return listing

    def forget(self, listing: Listing) -> None:
        with self._cache_lock:
            if self._cache.get(listing.key) is listing:
                del self._cache[listing.key]

    # -- segment files ---------------------------------------------------------------------

    def segment_url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return self.base_uri + (path if path.startswith("/") else "/" + path)

    def fetch(self, listing: Listing, paths: Sequence[str]) -> dict[str, bytes]:
        """Reads the given segment files of a listing (in parallel, bounded), keeping them with
        the listing so a second read of the same hot set does not read them again."""
        with listing.lock:
            missing = [p for p in dict.fromkeys(paths) if p not in listing.blobs]
        if missing:
            workers = min(self.read_concurrency, len(missing))
            if workers == 1:
                results = [self._fetch_one(p) for p in missing]
            else:
                with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="zombi-hot") as pool:
                    results = list(pool.map(self._fetch_one, missing))
            with listing.lock:
                listing.blobs.update(zip(missing, results))
        with listing.lock:
            return {p: listing.blobs[p] for p in paths}

    def _fetch_one(self, path: str) -> bytes:
        url = self.segment_url(path)
        for attempt in range(self.read_retries + 1):
            try:
                resp = self._session.get(url)
            except requests.RequestException as exc:
                raise HotUnavailable(f"hot segment {path}: {exc}") from exc
            if resp.status_code == 200:
                data = resp.content
                if not data.startswith(b"PAR1"):
                    raise HotUnavailable(f"hot segment {path}: not a Parquet file")
                return data
            if resp.status_code == 410:
                raise SnapshotTooOld(f"hot segment {path}: {_short(resp)}")
            if resp.status_code == 429 and attempt < self.read_retries:
                time.sleep(_backoff_s(attempt, resp.headers.get("Retry-After")))
                continue
            raise HotUnavailable(f"hot segment {path}: HTTP {resp.status_code}: {_short(resp)}")
        raise AssertionError("unreachable")


def _backoff_s(attempt: int, retry_after: str | None) -> float:
    delay = min(0.05 * (2**attempt), 1.0)
    if retry_after:
        try:
            delay = max(delay, min(float(retry_after), 2.0))
        except ValueError:
            pass
    return delay * random.uniform(0.8, 1.2)


def _short(resp: requests.Response) -> str:
    text = resp.text.strip().replace("\n", " ")
    return text[:300] if text else resp.reason or ""


# -- listing entries as Iceberg data files ---------------------------------------------------


def segment_partition(segment: Mapping[str, Any], spec: PartitionSpec, schema: Schema) -> Record:
    """The segment's partition tuple in `spec` (the spec its listing entry names): one value per
    field, as a manifest holds it (ints for dates and transform results, microseconds for times
    and timestamps, Decimal for decimals)."""
    values = segment["partition_values"]
    if int(segment["spec_id"]) != spec.spec_id or not isinstance(values, list) or len(values) != len(spec.fields):
        raise ValueError(f"partition values {values!r} are not a tuple of spec {spec.spec_id}")
    out = []
    for pf, value in zip(spec.fields, values):
        result = pf.transform.result_type(schema.find_field(pf.source_id).field_type)
        out.append(_partition_value(result, value))
    return Record(*out)


def _partition_value(result: Any, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(result, BooleanType) and isinstance(value, bool):
        return value
    if isinstance(result, StringType) and isinstance(value, str):
        return value
    if isinstance(result, DecimalType) and isinstance(value, str):
        return decimal.Decimal(value)
    if isinstance(result, (IntegerType, LongType, DateType, TimeType, TimestampType, TimestamptzType)):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    raise ValueError(f"partition value {value!r} is not a {result}")


def segment_data_file(
    segment: Mapping[str, Any], url: str, spec: PartitionSpec, schema: Schema, partition: Record
) -> DataFile:
    """A DataFile describing the segment: exact record count, counts and bounds, so that
    PyIceberg's inclusive metrics evaluator and residuals apply to it as to a committed file."""

    def counts(name: str) -> dict[int, int] | None:
        raw = segment.get(name)
        if not raw:
            return None
        return {int(k): int(v) for k, v in raw.items() if str(k).isdigit()}

    def bounds(name: str) -> dict[int, bytes] | None:
        raw = segment.get(name)
        if not raw:
            return None
        out = {}
        for k, v in raw.items():
            if not str(k).isdigit() or v is None or isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            fid = int(k)
            try:
                ftype = schema.find_field(fid).field_type
            except ValueError:
                continue
            if not isinstance(ftype, PrimitiveType) or not isinstance(ftype, _BOUNDED_TYPES):
                continue
            if isinstance(ftype, (FloatType, DoubleType)):
                v = float(v)
            elif not isinstance(v, int):
                continue
            out[fid] = to_bytes(ftype, v)
        return out or None

    data_file = DataFile.from_args(
        content=DataFileContent.DATA,
        file_path=url,
        file_format=FileFormat.PARQUET,
        partition=partition,
        record_count=int(segment["record_count"]),
        file_size_in_bytes=int(segment.get("file_size_in_bytes") or 0),
        value_counts=counts("value_counts"),
        null_value_counts=counts("null_value_counts"),
        nan_value_counts=counts("nan_value_counts"),
        lower_bounds=bounds("lower_bounds"),
        upper_bounds=bounds("upper_bounds"),
        split_offsets=[4],
    )
    data_file.spec_id = spec.spec_id
    return data_file
