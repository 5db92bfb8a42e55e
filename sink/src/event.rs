//! What a consumer receives: one JSON object per change, built once per Kafka record by the
//! shared topic reader and then written, unchanged, to every stream that wants it.
//!
//! The object is `{"topic", "partition", "offset", "key", "op", "table", "before", "after",
//! "source": {"lsn", "txId", "ts_ms"}}` for a Debezium change record. Records that are not a
//! Debezium envelope (an outbox-routed payload, for instance) keep `op` and `table` null and
//! carry their value as `"value"`. Tombstones (null values, which follow deletes for log
//! compaction) carry no information a consumer lacks and are not delivered.

use bytes::Bytes;
use serde_json::{json, Map, Value};

/// Debezium operation codes, as one byte: `c`reate, `u`pdate, `d`elete, `r`ead (snapshot),
/// `t`runcate, `m`essage; `0` when the record is not a Debezium change.
pub type OpCode = u8;

/// A change ready for delivery: its position and its serialised JSON (one line, no newline).
#[derive(Debug, Clone)]
pub struct ChangeEvent {
    pub partition: i32,
    pub offset: i64,
    pub op: OpCode,
    /// Broker timestamp of the record (ms since the epoch), for latency measurements.
    pub timestamp_ms: i64,
    pub json: Bytes,
}

/// Builds the delivered event for one Kafka record, or `None` for a tombstone.
///
/// A key or value that is not JSON is delivered as a JSON string rather than dropped, so
/// nothing is lost even from a misconfigured connector.
pub fn from_record(
    topic: &str,
    partition: i32,
    offset: i64,
    timestamp_ms: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Option<ChangeEvent> {
    let value = value?;
    let parse = |b: &[u8]| -> Value {
        serde_json::from_slice(b)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(b).into()))
    };
    let key = key.map(parse).unwrap_or(Value::Null);
    let value = parse(value);
    let mut out = Map::with_capacity(10);
    out.insert("topic".into(), Value::String(topic.to_string()));
    out.insert("partition".into(), json!(partition));
    out.insert("offset".into(), json!(offset));
    out.insert("key".into(), key);
    let op = match debezium_envelope(&value) {
        Some(env) => {
            let op = env.op;
            out.insert("op".into(), Value::String((op as char).to_string()));
            out.insert("table".into(), env.table);
            out.insert("before".into(), env.before);
            out.insert("after".into(), env.after);
            out.insert("source".into(), env.source);
            op
        }
        None => {
            out.insert("op".into(), Value::Null);
            out.insert("table".into(), Value::Null);
            out.insert("value".into(), value);
            0
        }
    };
    let mut json = serde_json::to_vec(&Value::Object(out)).expect("a Value always serialises");
    // The vector grew by doubling: give the slack back, since the event may stay buffered
    // for a long time and the buffer budget counts its length.
    json.shrink_to_fit();
    Some(ChangeEvent {
        partition,
        offset,
        op,
        timestamp_ms,
        json: Bytes::from(json),
    })
}

struct Envelope {
    op: OpCode,
    table: Value,
    before: Value,
    after: Value,
    source: Value,
}

fn debezium_envelope(value: &Value) -> Option<Envelope> {
    let obj = value.as_object()?;
    let op = obj.get("op")?.as_str()?;
    let op = match op.as_bytes() {
        [c @ (b'c' | b'u' | b'd' | b'r' | b't' | b'm')] => *c,
        _ => return None,
    };
    let source = obj.get("source")?.as_object()?;
    let table = match (source.get("schema"), source.get("table")) {
        (Some(Value::String(s)), Some(Value::String(t))) => Value::String(format!("{s}.{t}")),
        (_, Some(Value::String(t))) => Value::String(t.clone()),
        _ => Value::Null,
    };
    let pick = |k: &str| source.get(k).cloned().unwrap_or(Value::Null);
    Some(Envelope {
        op,
        table,
        before: obj.get("before").cloned().unwrap_or(Value::Null),
        after: obj.get("after").cloned().unwrap_or(Value::Null),
        source: json!({ "lsn": pick("lsn"), "txId": pick("txId"), "ts_ms": pick("ts_ms") }),
    })
}

/// Parses an ops filter (`["c","u","d","r"]`) into op codes; unknown letters are an error.
pub fn parse_ops(ops: &[String]) -> Result<Vec<OpCode>, String> {
    ops.iter()
        .map(|o| match o.as_str() {
            "c" | "u" | "d" | "r" | "t" | "m" => Ok(o.as_bytes()[0]),
            other => Err(format!(
                "unknown op {other:?}: expected one of c (create), u (update), d (delete), r (snapshot read), t (truncate), m (message)"
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debezium_update_is_flattened() {
        let v = br#"{"before":{"id":2,"qty":5},"after":{"id":2,"qty":6},"source":{"lsn":123,"txId":7,"ts_ms":99,"schema":"public","table":"items","db":"x"},"op":"u","ts_ms":100}"#;
        let e = from_record("p.public.items", 0, 41, 5, Some(br#"{"id":2}"#), Some(v)).unwrap();
        assert_eq!(e.op, b'u');
        let got: Value = serde_json::from_slice(&e.json).unwrap();
        assert_eq!(
            got,
            json!({"topic":"p.public.items","partition":0,"offset":41,"key":{"id":2},"op":"u",
                   "table":"public.items","before":{"id":2,"qty":5},"after":{"id":2,"qty":6},
                   "source":{"lsn":123,"txId":7,"ts_ms":99}})
        );
        assert!(!e.json.contains(&b'\n'));
    }

    #[test]
    fn tombstones_are_skipped_and_other_values_kept() {
        assert!(from_record("t", 0, 1, 0, Some(b"{}"), None).is_none());
        let e = from_record("t", 1, 2, 0, None, Some(b"not json\nat all")).unwrap();
        assert_eq!(e.op, 0);
        let got: Value = serde_json::from_slice(&e.json).unwrap();
        assert_eq!(got["value"], json!("not json\nat all"));
        assert!(
            !e.json.contains(&b'\n'),
            "newlines inside strings are escaped"
        );
    }

    #[test]
    fn ops_filter_is_validated() {
        assert_eq!(
            parse_ops(&["c".into(), "d".into()]).unwrap(),
            vec![b'c', b'd']
        );
        assert!(parse_ops(&["x".into()]).unwrap_err().contains("unknown op"));
    }
}
