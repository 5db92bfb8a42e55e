//! What a consumer receives: one JSON object per change, built once per Kafka record by the
//! shared topic reader and then written, unchanged, to every stream that wants it.
//!
//! The object is `{"topic", "partition", "offset", "key", "op", "table", "before", "after",
//! "source": {"lsn", "txId", "ts_ms"}}` for a Debezium change record. Records that are not a
//! Debezium envelope (an outbox-routed payload, for instance) keep `op` and `table` null and
//! carry their value as `"value"`. Tombstones (null values, which follow deletes for log
//! compaction) carry no information a consumer lacks and are not delivered.

use std::borrow::Cow;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;
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
    /// What consumer filters made of this event, computed once per distinct filter.
    pub derived: crate::filter::Derived,
    /// When the hub's shared reader took the record from librdkafka, in µs of
    /// [`crate::metrics::mono_us`]; 0 where it is not measured (history read for a replay).
    /// Streams report the time from here to their connection as the delivery delay.
    pub received_us: u64,
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
    from_debezium_record(topic, partition, offset, timestamp_ms, key, value)
        .or_else(|| from_any_record(topic, partition, offset, timestamp_ms, key, value))
}

/// The general path of [`from_record`]: any value, parsed into a tree.
fn from_any_record(
    topic: &str,
    partition: i32,
    offset: i64,
    timestamp_ms: i64,
    key: Option<&[u8]>,
    value: &[u8],
) -> Option<ChangeEvent> {
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
        derived: Default::default(),
        received_us: 0,
    })
}

/// A Debezium envelope, borrowed from the record: only what the event needs is looked at,
/// and `before`/`after` are copied as they are rather than parsed into a tree. The record is
/// read in one pass: `source` is read in place, not kept raw and parsed again.
#[derive(Deserialize)]
struct RawEnvelope<'a> {
    #[serde(borrow)]
    op: Cow<'a, str>,
    #[serde(borrow)]
    before: Option<&'a RawValue>,
    #[serde(borrow)]
    after: Option<&'a RawValue>,
    #[serde(borrow)]
    source: Object<RawSource<'a>>,
}

/// The fields of `source` the event keeps, as their JSON text.
#[derive(Deserialize)]
struct RawSource<'a> {
    #[serde(borrow)]
    schema: Option<&'a RawValue>,
    #[serde(borrow)]
    table: Option<&'a RawValue>,
    #[serde(borrow)]
    lsn: Option<&'a RawValue>,
    #[serde(borrow, rename = "txId")]
    tx_id: Option<&'a RawValue>,
    #[serde(borrow)]
    ts_ms: Option<&'a RawValue>,
}

/// `T` read from a JSON object only. A derived struct also accepts an array of its fields in
/// order, which is not a Debezium envelope (the general path keeps such a record as a
/// `value`).
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for ObjectVisitor<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(ObjectVisitor(std::marker::PhantomData))
            .map(Object)
    }
}

/// The fast path of [`from_record`] for a Debezium change with a JSON key (or none): the
/// event's JSON is written around the record's own bytes, in the documented field order,
/// into a buffer of exactly its size (the event may stay buffered for long, and the buffer
/// budget counts its length). `None` when the record is anything else (the general path
/// handles it).
fn from_debezium_record(
    topic: &str,
    partition: i32,
    offset: i64,
    timestamp_ms: i64,
    key: Option<&[u8]>,
    value: &[u8],
) -> Option<ChangeEvent> {
    // Checked as UTF-8 once, whole: the raw values borrowed from it then need no check each.
    let value = std::str::from_utf8(value).ok()?;
    let Object(env): Object<RawEnvelope> = serde_json::from_str(value).ok()?;
    let Object(source) = env.source;
    let op = match env.op.as_bytes() {
        [c @ (b'c' | b'u' | b'd' | b'r' | b't' | b'm')] => *c,
        _ => return None,
    };
    let key: Option<&RawValue> = match key {
        Some(k) => Some(serde_json::from_slice(k).ok()?),
        None => None,
    };
    fn raw(v: Option<&RawValue>) -> &[u8] {
        v.map_or(b"null", |r| r.get().as_bytes())
    }
    // A JSON string's text without its quotes: still valid escaped text, so two of them
    // joined by a dot and quoted again are the string "schema.table".
    fn string_text(v: Option<&RawValue>) -> Option<&[u8]> {
        let s = v?.get().as_bytes();
        (s.first() == Some(&b'"')).then(|| &s[1..s.len() - 1])
    }
    let table: [&[u8]; 5] = match (string_text(source.schema), string_text(source.table)) {
        (Some(s), Some(t)) => [b"\"", s, b".", t, b"\""],
        (_, Some(_)) => [raw(source.table), b"", b"", b"", b""],
        _ => [b"null", b"", b"", b"", b""],
    };
    // Kafka topic names are ASCII letters, digits, '.', '_' and '-': nothing to escape.
    let escaped;
    let topic: [&[u8]; 3] = if topic
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        [b"\"", topic.as_bytes(), b"\""]
    } else {
        escaped = serde_json::to_vec(topic).ok()?;
        [&escaped, b"", b""]
    };
    let mut partition_text = itoa::Buffer::new();
    let mut offset_text = itoa::Buffer::new();
    let op = [op];
    let parts: [&[u8]; 28] = [
        b"{\"topic\":",
        topic[0],
        topic[1],
        topic[2],
        b",\"partition\":",
        partition_text.format(partition).as_bytes(),
        b",\"offset\":",
        offset_text.format(offset).as_bytes(),
        b",\"key\":",
        raw(key),
        b",\"op\":\"",
        &op,
        b"\",\"table\":",
        table[0],
        table[1],
        table[2],
        table[3],
        table[4],
        b",\"before\":",
        raw(env.before),
        b",\"after\":",
        raw(env.after),
        b",\"source\":{\"lsn\":",
        raw(source.lsn),
        b",\"txId\":",
        raw(source.tx_id),
        b",\"ts_ms\":",
        raw(source.ts_ms),
    ];
    const END: &[u8] = b"}}";
    let len = parts.iter().map(|p| p.len()).sum::<usize>() + END.len();
    let mut out = Vec::with_capacity(len);
    for p in parts {
        out.extend_from_slice(p);
    }
    out.extend_from_slice(END);
    debug_assert_eq!(out.len(), len);
    // Copied JSON may be pretty-printed; a line break outside a string is only whitespace
    // (inside a string it is always escaped), and an SSE `data:` line must not contain one.
    if memchr::memchr2(b'\n', b'\r', &out).is_some() {
        for b in out.iter_mut() {
            if *b == b'\n' || *b == b'\r' {
                *b = b' ';
            }
        }
    }
    Some(ChangeEvent {
        partition,
        offset,
        op: op[0],
        timestamp_ms,
        json: Bytes::from(out),
        derived: Default::default(),
        received_us: 0,
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

    /// The fast path copies `before`/`after` as they are: field order and number text are
    /// kept, and a pretty-printed record still becomes one line.
    #[test]
    fn debezium_values_are_copied_verbatim_on_one_line() {
        let v = b"{\n  \"op\": \"c\",\r\n  \"after\": {\"z\": 1, \"a\": 12345678901234567890123, \"s\": \"x\\ny\"},\n  \"source\": {\"table\": \"t\", \"lsn\": 5}\n}";
        let e = from_record("db.t", 3, 9, 0, None, Some(v)).unwrap();
        let text = std::str::from_utf8(&e.json).unwrap();
        assert!(!text.contains('\n') && !text.contains('\r'), "{text}");
        assert!(
            text.contains(r#""after":{"z": 1, "a": 12345678901234567890123, "s": "x\ny"}"#),
            "{text}"
        );
        assert!(text.starts_with(r#"{"topic":"db.t","partition":3,"offset":9,"key":null,"op":"c","table":"t","before":null"#), "{text}");
        let got: Value = serde_json::from_slice(&e.json).unwrap();
        assert_eq!(
            got["source"],
            json!({"lsn": 5, "txId": null, "ts_ms": null})
        );
        assert_eq!(got["after"]["s"], json!("x\ny"));
    }

    /// A record the fast path does not take (a key that is not JSON) gets the general path,
    /// with the same fields.
    #[test]
    fn a_key_that_is_not_json_is_kept_as_a_string() {
        let v = br#"{"op":"d","before":{"id":1},"after":null,"source":{"schema":"s","table":"t"}}"#;
        let e = from_record("x", 0, 1, 0, Some(b"plain key"), Some(v)).unwrap();
        let got: Value = serde_json::from_slice(&e.json).unwrap();
        assert_eq!(got["key"], json!("plain key"));
        assert_eq!(got["op"], json!("d"));
        assert_eq!(got["table"], json!("s.t"));
        assert_eq!(got["before"], json!({"id": 1}));
    }

    /// An array with the envelope's fields in order is not an envelope (a derived struct
    /// would read it as one): it is delivered as a `value`, as before the fast path.
    #[test]
    fn arrays_are_values_not_envelopes() {
        let v = br#"["c", null, {"id": 1}, {"table": "t"}]"#;
        let e = from_record("x", 0, 1, 0, None, Some(v)).unwrap();
        let got: Value = serde_json::from_slice(&e.json).unwrap();
        assert_eq!(got["op"], Value::Null, "{got}");
        assert_eq!(got["value"], json!(["c", null, {"id": 1}, {"table": "t"}]));
        let v = br#"{"op":"c","after":{"id":1},"source":["s","t"]}"#;
        let e = from_record("x", 0, 2, 0, None, Some(v)).unwrap();
        let got: Value = serde_json::from_slice(&e.json).unwrap();
        assert_eq!(got["op"], Value::Null, "{got}");
    }

    /// The fast path and the general one make the same event of every Debezium shape:
    /// escaped names, a missing or null or non-string schema or table, an odd topic name.
    #[test]
    fn the_fast_path_agrees_with_the_general_one() {
        let values: [&[u8]; 7] = [
            br#"{"op":"c","after":{"id":1},"source":{"schema":"p\"ub","table":"t\u00e9.x","lsn":1,"txId":2,"ts_ms":3}}"#,
            br#"{"op":"u","before":null,"after":{"a":[1,2]},"source":{"table":"only"}}"#,
            br#"{"op":"d","before":{"id":1},"source":{"schema":null,"table":"t"}}"#,
            br#"{"op":"r","after":{},"source":{"schema":7,"table":"t","lsn":null}}"#,
            br#"{"op":"t","source":{"schema":"s"}}"#,
            br#"{"op":"m","source":{"schema":"s","table":null,"txId":"x"}}"#,
            br#"{ "source" : { "table" : "t" , "ts_ms" : 1.5e3 } , "op" : "c" , "extra" : [ ] }"#,
        ];
        for topic in ["db.public.t", "odd \"topic\"\n"] {
            for (i, v) in values.iter().enumerate() {
                let key = Some(&br#"{"id":1}"#[..]);
                let fast = from_debezium_record(topic, 1, 2, 3, key, v)
                    .unwrap_or_else(|| panic!("value {i} takes the fast path"));
                let general = from_any_record(topic, 1, 2, 3, key, v).unwrap();
                let fast_json: Value = serde_json::from_slice(&fast.json)
                    .unwrap_or_else(|e| panic!("value {i}: {e}: {:?}", fast.json));
                let general_json: Value = serde_json::from_slice(&general.json).unwrap();
                assert_eq!(fast_json, general_json, "value {i}, topic {topic:?}");
                assert_eq!(fast.op, general.op);
            }
        }
        let e = from_record("t", 0, 0, 0, None, Some(values[0])).unwrap();
        let got: Value = serde_json::from_slice(&e.json).unwrap();
        assert_eq!(got["table"], json!("p\"ub.t\u{e9}.x"));
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
