//! A table's partition spec applied to rows: the partition value of every row, computed by
//! iceberg-rust's transforms (`PartitionValueCalculator`) from the spec's source columns.
//! The flusher and maintenance split batches with it before writing, and hot segments are
//! cut by it, so a hot segment has one partition value as a data file does.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch, StructArray, UInt32Array};
use arrow_row::{RowConverter, SortField};
use arrow_schema::SchemaRef as ArrowSchemaRef;
use iceberg::arrow::{PartitionValueCalculator, arrow_struct_to_literal, schema_to_arrow_schema};
use iceberg::spec::{
    Literal, PartitionSpecRef, PrimitiveLiteral, PrimitiveType, Schema, Struct, StructType,
    TableMetadata, Type,
};

use super::Layout;
use crate::schema::{self, Row};
use crate::typed::TypedError;

/// The partition value of each row: an index into the distinct values, which are in the
/// order of their first row.
pub struct Values {
    pub of_row: Vec<u32>,
    pub distinct: Vec<Struct>,
}

/// Rows of one partition value, in the order they came.
pub struct PartitionBatch {
    pub partition: Struct,
    pub batch: RecordBatch,
}

/// The partition values of rows under one spec of a table.
pub struct Partitioner {
    spec: PartitionSpecRef,
    partition_type: StructType,
    /// Field ids of the spec's source columns, ascending, and their Arrow schema.
    sources: Vec<i32>,
    source_arrow: ArrowSchemaRef,
    /// `None`: the spec has no fields, or only `void` ones: every row has the one value
    /// `constant` (empty, or all null).
    calculator: Option<PartitionValueCalculator>,
    constant: Struct,
}

fn compute_error(e: impl std::fmt::Display) -> TypedError {
    TypedError::Rows(format!("cannot compute the rows' partition values: {e}"))
}

impl Partitioner {
    /// The partitioner of the table's default (current) spec.
    pub fn of(metadata: &TableMetadata) -> Result<Self, TypedError> {
        Self::new(metadata.current_schema(), metadata.default_partition_spec().clone())
    }

    pub fn new(schema: &Schema, spec: PartitionSpecRef) -> Result<Self, TypedError> {
        let mut sources: Vec<i32> = spec.fields().iter().map(|f| f.source_id).collect();
        sources.sort_unstable();
        sources.dedup();
        let fields = sources
            .iter()
            .map(|id| {
                schema.as_struct().field_by_id(*id).cloned().ok_or_else(|| {
                    compute_error(format!("the spec's source column {id} is not top-level"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let source_schema = Schema::builder()
            .with_fields(fields)
            .build()
            .map_err(|e| compute_error(e.message()))?;
        let partition_type =
            spec.partition_type(&source_schema).map_err(|e| compute_error(e.message()))?;
        let source_arrow = Arc::new(
            schema_to_arrow_schema(&source_schema).map_err(|e| compute_error(e.message()))?,
        );
        // iceberg-rust's calculator takes no spec without a non-void field.
        let constant = Struct::from_iter(spec.fields().iter().map(|_| None));
        let calculator = if spec.is_unpartitioned() {
            None
        } else {
            Some(
                PartitionValueCalculator::try_new(&spec, &source_schema)
                    .map_err(|e| compute_error(e.message()))?,
            )
        };
        Ok(Partitioner { spec, partition_type, sources, source_arrow, calculator, constant })
    }

    pub fn spec(&self) -> &PartitionSpecRef {
        &self.spec
    }

    pub fn spec_id(&self) -> i32 {
        self.spec.spec_id()
    }

    /// The partition value of each row, over the spec's source columns (`sources`, in
    /// `source_arrow`'s order): equal values are found by their Arrow row encoding, and
    /// each distinct value becomes an Iceberg struct once.
    fn values(&self, sources: &RecordBatch) -> Result<Values, TypedError> {
        let n = sources.num_rows();
        let Some(calculator) = &self.calculator else {
            return Ok(self.constant_values(n));
        };
        let values: ArrayRef =
            calculator.calculate(sources).map_err(|e| compute_error(e.message()))?;
        let parts = values
            .as_any()
            .downcast_ref::<StructArray>()
            .ok_or_else(|| compute_error("the partition values are not a struct"))?;
        let fields = parts.columns().iter().map(|c| SortField::new(c.data_type().clone()));
        let converter = RowConverter::new(fields.collect()).map_err(compute_error)?;
        let rows = converter.convert_columns(parts.columns()).map_err(compute_error)?;
        let mut ids: HashMap<arrow_row::Row<'_>, u32> = HashMap::new();
        let mut firsts = Vec::new();
        let mut of_row = Vec::with_capacity(n);
        for i in 0..n {
            let next = ids.len() as u32;
            let id = *ids.entry(rows.row(i)).or_insert_with(|| {
                firsts.push(i);
                next
            });
            of_row.push(id);
        }
        let distinct = firsts
            .into_iter()
            .map(|i| {
                let value = arrow_struct_to_literal(&values.slice(i, 1), &self.partition_type)
                    .map_err(|e| compute_error(e.message()))?;
                match value.into_iter().next() {
                    Some(Some(Literal::Struct(value))) => Ok(value),
                    _ => Err(compute_error("a partition value is not a struct")),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Values { of_row, distinct })
    }

    /// The source columns of a batch in the table's schema (top-level fields carry their
    /// field ids).
    fn sources_of(&self, batch: &RecordBatch) -> Result<RecordBatch, TypedError> {
        let by_id: HashMap<i32, usize> = batch
            .schema()
            .fields()
            .iter()
            .enumerate()
            .filter_map(|(i, f)| Some((f.metadata().get("PARQUET:field_id")?.parse().ok()?, i)))
            .collect();
        let columns = self
            .sources
            .iter()
            .map(|id| {
                by_id.get(id).map(|i| batch.column(*i).clone()).ok_or_else(|| {
                    compute_error(format!("the rows lack the spec's source column {id}"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RecordBatch::try_new(self.source_arrow.clone(), columns)?)
    }

    /// The source columns of stored rows: system columns straight from the events, typed
    /// columns converted as the flusher converts them.
    fn sources_of_rows(&self, layout: &Layout, rows: &[Row]) -> Result<RecordBatch, TypedError> {
        if self.sources.iter().all(|id| schema::is_event_column(*id)) {
            let columns = self
                .sources
                .iter()
                .map(|id| schema::system_column(*id, rows).expect("checked"))
                .collect();
            return Ok(RecordBatch::try_new(self.source_arrow.clone(), columns)?);
        }
        self.sources_of(&layout.to_batch(rows)?)
    }

    /// The partition value of each of the stored `rows`.
    pub fn row_values(&self, layout: &Layout, rows: &[Row]) -> Result<Values, TypedError> {
        if self.calculator.is_none() {
            return Ok(self.constant_values(rows.len()));
        }
        self.values(&self.sources_of_rows(layout, rows)?)
    }

    fn constant_values(&self, rows: usize) -> Values {
        let distinct = if rows == 0 { Vec::new() } else { vec![self.constant.clone()] };
        Values { of_row: vec![0; rows], distinct }
    }

    /// Splits a batch in the table's schema by partition value, each part's rows in batch
    /// order; parts in the order of their first row. One part takes the batch uncopied.
    pub fn split(&self, batch: RecordBatch) -> Result<Vec<PartitionBatch>, TypedError> {
        if self.calculator.is_none() {
            let partition = self.constant.clone();
            let whole = (batch.num_rows() > 0).then(|| PartitionBatch { partition, batch });
            return Ok(whole.into_iter().collect());
        }
        let values = self.values(&self.sources_of(&batch)?)?;
        if values.distinct.len() <= 1 {
            let part = values.distinct.into_iter().next();
            return Ok(part
                .map(|partition| PartitionBatch { partition, batch })
                .into_iter()
                .collect());
        }
        let mut indices: Vec<Vec<u32>> = vec![Vec::new(); values.distinct.len()];
        for (row, id) in values.of_row.iter().enumerate() {
            indices[*id as usize].push(row as u32);
        }
        values
            .distinct
            .into_iter()
            .zip(indices)
            .map(|(partition, rows)| {
                let batch =
                    arrow_select::take::take_record_batch(&batch, &UInt32Array::from(rows))?;
                Ok(PartitionBatch { partition, batch })
            })
            .collect()
    }

    /// A partition value as the hot-segment listing carries it: a JSON array with one value
    /// per spec field, as a manifest stores it (numbers for ints, longs, dates in days and
    /// times and timestamps in microseconds; strings; booleans; decimals as their text;
    /// `null`).
    pub fn to_json(&self, value: &Struct) -> Result<serde_json::Value, TypedError> {
        let fields = self.partition_type.fields();
        value
            .iter()
            .zip(fields)
            .map(|(v, field)| {
                let Some(v) = v else { return Ok(serde_json::Value::Null) };
                let Literal::Primitive(p) = v else {
                    return Err(compute_error("a partition value is not a primitive"));
                };
                Ok(match (p, field.field_type.as_ref()) {
                    (PrimitiveLiteral::Boolean(b), _) => (*b).into(),
                    (PrimitiveLiteral::Int(i), _) => (*i).into(),
                    (PrimitiveLiteral::Long(l), _) => (*l).into(),
                    (PrimitiveLiteral::String(s), _) => s.clone().into(),
                    (
                        PrimitiveLiteral::Int128(unscaled),
                        Type::Primitive(PrimitiveType::Decimal { scale, .. }),
                    ) => decimal_text(*unscaled, *scale).into(),
                    (_, t) => {
                        return Err(compute_error(format!(
                            "partition values of type {t} are not listed"
                        )));
                    }
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(serde_json::Value::Array)
    }
}

/// `unscaled` × 10^-`scale` as text, e.g. (1250, 2) → `12.50`.
fn decimal_text(unscaled: i128, scale: u32) -> String {
    let digits = unscaled.unsigned_abs().to_string();
    let sign = if unscaled < 0 { "-" } else { "" };
    let scale = scale as usize;
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let digits = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = digits.split_at(digits.len() - scale);
    format!("{sign}{int}.{frac}")
}

/// Splits stored rows by partition value of `partitioner`'s spec, each part sorted by
/// (`timestamp_ms`, `sequence`) as every data file is: a range spanning partitions (or
/// late events) never makes a flush fail.
pub fn split_rows(
    mut rows: Vec<Row>,
    layout: &Layout,
    partitioner: &Partitioner,
) -> Result<Vec<PartitionBatch>, TypedError> {
    rows.sort_by_key(|(p, s, e)| (e.timestamp_ms, *s, *p));
    partitioner.split(layout.to_batch(&rows)?)
}

#[cfg(test)]
mod tests {
    use iceberg::spec::{Transform, UnboundPartitionSpec};
    use zombi_shared::wire::Payload;

    use super::*;
    use crate::hot::StoredEvent;

    const MS_PER_HOUR: i64 = 3_600_000;

    fn ev(ts: i64) -> StoredEvent {
        StoredEvent {
            timestamp_ms: ts,
            ingest_ms: ts,
            idempotency_key: None,
            payload: Payload::Json("{}".into()),
            role: Default::default(),
        }
    }

    fn partitioner(spec: UnboundPartitionSpec) -> Partitioner {
        let schema = schema::schema();
        Partitioner::new(&schema, Arc::new(spec.bind(schema.clone()).unwrap())).unwrap()
    }

    #[test]
    fn the_default_spec_splits_by_hour_and_sorts() {
        let h = MS_PER_HOUR;
        let rows =
            vec![(0, 0, ev(2 * h + 5)), (0, 1, ev(h + 1)), (1, 0, ev(2 * h + 1)), (0, 2, ev(h))];
        let out = split_rows(rows, &Layout::Raw, &partitioner(schema::partition_spec())).unwrap();
        let shape: Vec<_> = out.iter().map(|b| (b.partition.clone(), b.batch.num_rows())).collect();
        let hour = |d, h| Struct::from_iter([Some(Literal::date(d)), Some(Literal::int(h))]);
        assert_eq!(shape, vec![(hour(0, 1), 2), (hour(0, 2), 2)]);
        let ts = out[0].batch.column(2).as_any().downcast_ref::<arrow_array::Int64Array>().unwrap();
        assert_eq!(ts.values().to_vec(), vec![h, h + 1]);
        assert_eq!(
            out[0].batch.schema().field(0).metadata().get("PARQUET:field_id").map(String::as_str),
            Some("1")
        );
    }

    #[test]
    fn interleaved_values_group_in_row_order_and_values_list_as_json() {
        let spec = UnboundPartitionSpec::builder()
            .add_partition_field(schema::FIELD_EVENT_TIME, "event_time_day", Transform::Day)
            .and_then(|b| {
                b.add_partition_field(schema::FIELD_PARTITION, "p_bucket", Transform::Bucket(4))
            })
            .unwrap()
            .build();
        let p = partitioner(spec);
        let day = 24 * MS_PER_HOUR;
        let rows: Vec<Row> =
            (0..40u32).map(|i| (i % 5, u64::from(i), ev(i64::from(i % 2) * day + 7))).collect();
        let values = p.row_values(&Layout::Raw, &rows).unwrap();
        let changes = values.of_row.windows(2).filter(|w| w[0] != w[1]).count();
        assert!(changes > 4, "values alternate: {:?}", values.of_row);
        assert!(values.distinct.len() <= 8, "2 days × 4 buckets at most");
        let parts = split_rows(rows, &Layout::Raw, &p).unwrap();
        let total: usize = parts.iter().map(|b| b.batch.num_rows()).sum();
        assert_eq!(total, 40);
        for part in &parts {
            // Every row of a part has the part's value, and rows stay sorted.
            let again = p.values(&p.sources_of(&part.batch).unwrap()).unwrap();
            assert_eq!(again.distinct, vec![part.partition.clone()]);
            let json = p.to_json(&part.partition).unwrap();
            let days = json[0].as_i64().unwrap();
            assert!(days == 0 || days == 1, "{json}");
            assert!((0..4).contains(&json[1].as_i64().unwrap()), "{json}");
        }
        assert!(p.row_values(&Layout::Raw, &[]).unwrap().distinct.is_empty());
    }

    #[test]
    fn an_unpartitioned_spec_keeps_every_row_together() {
        let p = partitioner(UnboundPartitionSpec::builder().build());
        let rows: Vec<Row> = (0..3u32).map(|i| (i, 0, ev(i64::from(i) * MS_PER_HOUR))).collect();
        let parts = split_rows(rows, &Layout::Raw, &p).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].batch.num_rows(), 3);
        assert_eq!(p.to_json(&parts[0].partition).unwrap(), serde_json::json!([]));
    }

    #[test]
    fn a_spec_of_void_fields_gives_every_row_null_values() {
        let spec = UnboundPartitionSpec::builder()
            .add_partition_field(schema::FIELD_EVENT_DATE, "gone", Transform::Void)
            .unwrap()
            .build();
        let p = partitioner(spec);
        let rows: Vec<Row> = (0..3u32).map(|i| (i, 0, ev(i64::from(i) * MS_PER_HOUR))).collect();
        let parts = split_rows(rows, &Layout::Raw, &p).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].partition, Struct::from_iter([None]));
        assert_eq!(p.to_json(&parts[0].partition).unwrap(), serde_json::json!([null]));
    }

    #[test]
    fn decimals_print_with_their_scale() {
        assert_eq!(decimal_text(1250, 2), "12.50");
        assert_eq!(decimal_text(-5, 2), "-0.05");
        assert_eq!(decimal_text(7, 0), "7");
    }
}
