"""Tables and scans that read the node's hot rows next to the committed ones.

Contract (docs/realtime.md): read snapshot S, take its watermark map W, read the committed
rows of S and the hot rows at or above W. Every acknowledged event then appears exactly once.
The hot rows are planned as Iceberg data files (one per hot segment) so that PyIceberg prunes,
filters, projects and limits them exactly as it does committed files.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from itertools import chain
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

import pyarrow as pa
from pyiceberg.expressions import AlwaysTrue, BooleanExpression
from pyiceberg.expressions.visitors import _InclusiveMetricsEvaluator, expression_evaluator, residual_evaluator_of
from pyiceberg.io import FileIO, InputFile, InputStream, OutputFile
from pyiceberg.io.pyarrow import ArrowScan, schema_to_pyarrow
from pyiceberg.schema import Schema
from pyiceberg.table import ALWAYS_TRUE, DataScan, FileScanTask, Table
from pyiceberg.typedef import EMPTY_DICT, Identifier, Properties

from zombi_iceberg._log import warn_limited
from zombi_iceberg.errors import HotUnavailable, SnapshotTooOld
from zombi_iceberg.hot import (
    HotClient,
    Listing,
    segment_data_file,
    segment_partition,
    snapshot_watermarks,
)

if TYPE_CHECKING:
    from pyiceberg.table.metadata import TableMetadata

log = logging.getLogger("zombi_iceberg")

# Scan option: "false" reads committed rows only.
HOT_OPTION = "zombi.hot"
# Catalog property: bounded re-plans after 410 Gone.
REPLAN_RETRIES = "zombi.hot-replan-retries"
DEFAULT_REPLAN_RETRIES = 3


@dataclass
class HotPlan:
    """What the last read of a scan did with hot rows."""

    snapshot_id: int | None
    watermarks: dict[int, int] | None
    listed: int = 0
    segments: list[dict[str, Any]] = field(default_factory=list)
    read: int = 0
    hot_rows: int = 0
    replans: int = 0
    cold_only_reason: str | None = None

    @property
    def cold_only(self) -> bool:
        return self.cold_only_reason is not None


class ZombiTable(Table):
    """A Zombi table whose `scan()` adds the node's hot rows.

    A table loaded from the warehouse pointer (node unreachable) reads committed rows only;
    `refresh()` asks the node again.
    """

    def __init__(
        self,
        identifier: Identifier,
        metadata: TableMetadata,
        metadata_location: str,
        io: FileIO,
        catalog: Any,
        config: dict[str, str] = EMPTY_DICT,
        from_warehouse: bool = False,
    ) -> None:
        super().__init__(identifier, metadata, metadata_location, io, catalog, config)
        self.from_warehouse = from_warehouse

    def refresh(self) -> Table:
        fresh = self.catalog.load_table(self._identifier)
        self._check_uuid(self.metadata, fresh.metadata)
        self.metadata = fresh.metadata
        self.io = fresh.io
        self.metadata_location = fresh.metadata_location
        self.config = fresh.config
        self.from_warehouse = getattr(fresh, "from_warehouse", False)
        return self

    def scan(
        self,
        row_filter: str | BooleanExpression = ALWAYS_TRUE,
        selected_fields: tuple[str, ...] = ("*",),
        case_sensitive: bool = True,
        snapshot_id: int | None = None,
        options: Properties = EMPTY_DICT,
        limit: int | None = None,
    ) -> ZombiScan:
        if self.from_warehouse:
            options = {**options, HOT_OPTION: "false"}
        return ZombiScan(
            table_metadata=self.metadata,
            io=self.io,
            row_filter=row_filter,
            selected_fields=selected_fields,
            case_sensitive=case_sensitive,
            snapshot_id=snapshot_id,
            options=options,
            limit=limit,
            catalog=self.catalog,
            table_identifier=self._identifier,
        )


class ZombiScan(DataScan):
    """A DataScan whose reads (`to_arrow`, `to_arrow_batch_reader`, `count`, and through them
    `to_pandas`, `to_duckdb`, `to_polars`) include the node's hot rows.

    Scans pinned to a snapshot (`snapshot_id=`, `use_ref`) read committed rows only, as do
    scans with the option `zombi.hot=false`. `plan_files()` keeps its Iceberg meaning: the
    committed files of the snapshot.
    """

    last_plan: HotPlan | None = None

    # -- public ----------------------------------------------------------------------------

    def hot_segments(self) -> list[dict[str, Any]]:
        """The hot segments this scan reads: the node's listing entries for the scan's
        snapshot after pruning with the row filter (partition values and metrics). Empty for
        a cold-only scan or when the node does not answer."""
        return [dict(seg) for seg in self._plan(fetch=lambda _task: False).info.segments]

    def to_arrow(self, dictionary_columns: tuple[str, ...] = ()) -> pa.Table:
        plan = self._plan(fetch=lambda _task: True)
        return plan.arrow_scan(dictionary_columns=dictionary_columns).to_table(plan.tasks)

    def to_arrow_batch_reader(self, dictionary_columns: tuple[str, ...] = ()) -> pa.RecordBatchReader:
        # Hot segments are read during planning, so a failure of the node (or a 410) happens
        # before the first batch is handed out, never in the middle of the stream.
        plan = self._plan(fetch=lambda _task: True)
        target = schema_to_pyarrow(plan.scan.projection())
        batches: Iterator[pa.RecordBatch] = plan.arrow_scan(dictionary_columns=dictionary_columns).to_record_batches(
            plan.tasks
        )
        if dictionary_columns:
            # Keep the dictionary types Arrow produced instead of casting them away.
            first = next(batches, None)
            if first is not None:
                batches = chain([first], batches)
                wanted = set(dictionary_columns)
                target = pa.schema(
                    [first.schema.field(f.name) if f.name in wanted else f for f in target], metadata=target.metadata
                )
        return pa.RecordBatchReader.from_batches(target, batches).cast(target)

    def count(self) -> int:
        # Like DataScan.count: a file whose residual is always-true counts by its record
        # count (exact for hot segments too); the others are read and filtered.
        plan = self._plan(fetch=lambda task: task.residual != AlwaysTrue())
        total = 0
        for task in plan.tasks:
            if task.residual == AlwaysTrue() and not task.delete_files:
                total += task.file.record_count
            else:
                scan = ArrowScan(
                    table_metadata=plan.scan.table_metadata,
                    io=plan.io,
                    projected_schema=plan.scan.projection(),
                    row_filter=plan.scan.row_filter,
                    case_sensitive=plan.scan.case_sensitive,
                )
                total += len(scan.to_table([task]))
        return total

    # -- planning --------------------------------------------------------------------------

    def _plan(self, fetch: Callable[[FileScanTask], bool]) -> _ReadPlan:
        scan: ZombiScan = self
        replans = 0
        limit = _int_prop(getattr(self.catalog, "properties", {}), REPLAN_RETRIES, DEFAULT_REPLAN_RETRIES)
        while True:
            try:
                plan = scan._plan_once(fetch)
            except SnapshotTooOld as exc:
                if replans >= limit:
                    raise SnapshotTooOld(f"still too old after {replans} reloads of the table: {exc}") from exc
                replans += 1
                log.info("snapshot too old for hot reads, reloading the table: %s", exc)
                scan = scan._reloaded()
                continue
            plan.info.replans = replans
            self.last_plan = plan.info
            return plan

    def _reloaded(self) -> ZombiScan:
        table = self.catalog.load_table(self.table_identifier)
        options = dict(self.options)
        if getattr(table, "from_warehouse", False):
            options[HOT_OPTION] = "false"
        return self.update(table_metadata=table.metadata, io=table.io, options=options)

    def _plan_once(self, fetch: Callable[[FileScanTask], bool]) -> _ReadPlan:
        snapshot = self.snapshot()
        hot = HotPlan(snapshot_id=snapshot.snapshot_id if snapshot else None, watermarks=None)
        hot.cold_only_reason = self._cold_only_reason()
        if hot.cold_only_reason is not None:
            return _ReadPlan(self, list(self.plan_files()), [], {}, hot)

        marks = {} if snapshot is None else snapshot_watermarks(snapshot.summary)
        if marks is None:
            # Zombi writes the complete map into every snapshot it commits; without one the
            # hot rows cannot be placed exactly, and committed rows alone are never wrong.
            hot.cold_only_reason = "the snapshot has no zombi.watermark.* summary keys"
            warn_limited(
                ("no-watermarks", self.table_identifier),
                "reading committed rows only of %s: %s (snapshot %s)",
                ".".join(self.table_identifier or ()),
                hot.cold_only_reason,
                hot.snapshot_id,
            )
            return _ReadPlan(self, list(self.plan_files()), [], {}, hot)
        hot.watermarks = marks

        client: HotClient = self.catalog.hot_client()
        table_name = self.table_identifier[-1]
        try:
            listing = client.list_segments(table_name, hot.snapshot_id, marks)
        except HotUnavailable as exc:
            return self._cold_fallback(hot, exc)
        hot.listed = len(listing.segments)

        try:
            hot_tasks = self._prune(listing, client, marks)
        except HotUnavailable as exc:
            client.forget(listing)
            return self._cold_fallback(hot, exc)
        hot.segments = [seg for seg, _ in hot_tasks]
        tasks = [task for _, task in hot_tasks]
        to_read = [task.file.file_path for task in tasks if fetch(task)]
        try:
            blobs = client.fetch(listing, to_read) if to_read else {}
        except SnapshotTooOld:
            client.forget(listing)
            raise
        except HotUnavailable as exc:
            client.forget(listing)
            return self._cold_fallback(hot, exc)
        hot.read = len(blobs)
        hot.hot_rows = sum(task.file.record_count for task in tasks)
        return _ReadPlan(self, list(self.plan_files()), tasks, blobs, hot)

    def _cold_only_reason(self) -> str | None:
        if str(self.options.get(HOT_OPTION, "true")).lower() in ("false", "0", "no", "off"):
            return f"scan option {HOT_OPTION}=false"
        if self.snapshot_id is not None:
            return "the scan is pinned to a snapshot"
        if self.catalog is None or not hasattr(self.catalog, "hot_client") or self.table_identifier is None:
            return "the scan has no Zombi catalog"
        return None

    def _cold_fallback(self, hot: HotPlan, exc: Exception) -> _ReadPlan:
        if self.catalog.hot_required():
            raise exc
        hot.cold_only_reason = f"hot rows unavailable: {exc}"
        hot.listed, hot.segments, hot.read, hot.hot_rows = 0, [], 0, 0
        warn_limited(
            ("hot-unavailable", self.table_identifier),
            "reading committed rows only of %s, the node's hot rows are unavailable: %s",
            ".".join(self.table_identifier),
            exc,
        )
        return _ReadPlan(self, list(self.plan_files()), [], {}, hot)

    def _prune(
        self, listing: Listing, client: HotClient, marks: Mapping[int, int]
    ) -> list[tuple[dict[str, Any], FileScanTask]]:
        """Keeps the segments that may hold matching rows, by the same evaluators PyIceberg
        applies to committed files: the row filter's inclusive projection on the partition,
        then the inclusive metrics evaluator on counts and bounds."""
        metadata = self.table_metadata
        schema = metadata.schema()
        specs = metadata.specs()
        metrics_ok = _InclusiveMetricsEvaluator(schema, self.row_filter, self.case_sensitive).eval
        per_spec: dict[int, tuple[Any, Any]] = {}

        def evaluators(spec: Any) -> tuple[Any, Any]:
            if spec.spec_id not in per_spec:
                partition_schema = Schema(*spec.partition_type(schema).fields)
                partition_ok = expression_evaluator(
                    partition_schema, self.partition_filters[spec.spec_id], self.case_sensitive
                )
                residuals = residual_evaluator_of(
                    spec=spec, expr=self.row_filter, case_sensitive=self.case_sensitive, schema=schema
                )
                per_spec[spec.spec_id] = (partition_ok, residuals)
            return per_spec[spec.spec_id]

        kept = []
        for seg in listing.segments:
            try:
                below = int(seg["from_sequence"]) < marks.get(int(seg["partition"]), 0)
                spec = specs.get(int(seg["spec_id"]))
                if spec is None:
                    raise ValueError(f"its partition spec {seg['spec_id']} is not in the table's metadata (reload the table)")
                partition = segment_partition(seg, spec, schema)
                data_file = segment_data_file(seg, client.segment_url(seg["path"]), spec, schema, partition)
            except (KeyError, TypeError, ValueError) as exc:
                raise HotUnavailable(f"malformed hot segment {seg!r}: {exc!r}") from exc
            if below:
                # Rows below the snapshot's watermark are in the snapshot already: reading
                # them again would duplicate them.
                raise HotUnavailable(f"hot segment {seg['path']} starts below the watermark map {marks}")
            partition_ok, residuals = evaluators(spec)
            if not partition_ok(partition):
                continue
            if not metrics_ok(data_file):
                continue
            kept.append((seg, FileScanTask(data_file, residual=residuals.residual_for(partition))))
        return kept


@dataclass
class _ReadPlan:
    scan: ZombiScan
    cold_tasks: list[FileScanTask]
    hot_tasks: list[FileScanTask]
    blobs: dict[str, bytes]
    info: HotPlan

    @property
    def tasks(self) -> list[FileScanTask]:
        return self.cold_tasks + self.hot_tasks

    @property
    def io(self) -> FileIO:
        if not self.hot_tasks:
            return self.scan.io
        return _HotFileIO(self.scan.io, self.blobs, {t.file.file_path for t in self.hot_tasks})

    def arrow_scan(self, dictionary_columns: tuple[str, ...] = ()) -> ArrowScan:
        s = self.scan
        return ArrowScan(
            s.table_metadata,
            self.io,
            s.projection(),
            s.row_filter,
            s.case_sensitive,
            s.limit,
            dictionary_columns=dictionary_columns,
        )


class _HotFileIO(FileIO):
    """The scan's FileIO, plus the hot segments already read into memory."""

    def __init__(self, inner: FileIO, blobs: Mapping[str, bytes], hot_paths: set[str]) -> None:
        super().__init__(inner.properties)
        self._inner = inner
        self._blobs = blobs
        self._hot_paths = hot_paths

    def new_input(self, location: str) -> InputFile:
        if location in self._hot_paths:
            blob = self._blobs.get(location)
            if blob is None:
                raise RuntimeError(f"hot segment {location} was planned but not read")
            return _BlobInputFile(location, blob)
        return self._inner.new_input(location)

    def new_output(self, location: str) -> OutputFile:
        return self._inner.new_output(location)

    def delete(self, location: str | InputFile | OutputFile) -> None:
        self._inner.delete(location)


class _BlobInputFile(InputFile):
    def __init__(self, location: str, blob: bytes) -> None:
        super().__init__(location)
        self._blob = blob

    def __len__(self) -> int:
        return len(self._blob)

    def exists(self) -> bool:
        return True

    def open(self, seekable: bool = True) -> InputStream:
        return pa.BufferReader(self._blob)  # type: ignore[return-value]


def _int_prop(props: Mapping[str, Any], key: str, default: int) -> int:
    raw = props.get(key)
    return default if raw is None else int(raw)
