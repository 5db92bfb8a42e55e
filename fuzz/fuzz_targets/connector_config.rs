//! A source declaration (`POST /v1/sources`, `bootstrap`'s pipeline file) becomes a Debezium
//! connector config that Kafka Connect stores and the sink later reads back. For any JSON body:
//! validation never panics, and for every body it accepts, the config built from it parses back
//! (`StoredSource::from_config`) into the same name, database target (TLS settings included),
//! tables, mode and snapshot mode, so no value can smuggle in another property or be misread
//! later.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tumbleweed_sink::sources::connect::{
    connector_config, StoredSource, TopicSettings, DEFAULT_CONNECT_RDS_CA_PATH,
};
use tumbleweed_sink::sources::model::CreateSource;

fuzz_target!(|data: &[u8]| {
    let Ok(req) = serde_json::from_slice::<CreateSource>(data) else {
        return;
    };
    let Ok(spec) = tumbleweed_sink::sources::model::validate(req, "fuzz") else {
        return;
    };
    let config = connector_config(
        &spec,
        TopicSettings {
            replication_factor: 3,
            partitions: 1,
        },
        DEFAULT_CONNECT_RDS_CA_PATH,
    );
    // Every value Connect receives is a plain string without line breaks or NULs.
    for (k, v) in &config {
        let s = v
            .as_str()
            .unwrap_or_else(|| panic!("{k} is not a string: {v}"));
        assert!(!s.contains(['\n', '\r', '\0']), "{k}: {s:?}");
    }
    let back = StoredSource::from_config(&config).expect("a built config parses back");
    assert_eq!(back.name, spec.name);
    assert_eq!(back.db.host, spec.db.host);
    assert_eq!(back.db.port, spec.db.port);
    assert_eq!(back.db.database, spec.db.database);
    assert_eq!(back.db.user, spec.db.user);
    assert_eq!(back.db.sslmode, spec.db.sslmode);
    assert_eq!(back.db.sslrootcert, spec.db.sslrootcert);
    assert_eq!(back.mode, spec.mode);
    assert_eq!(back.snapshot_mode, spec.snapshot_mode);
    let tables: Vec<String> = spec
        .tables
        .iter()
        .map(|t| format!("{}.{}", t.schema, t.table))
        .collect();
    let kept: Vec<&String> = back.tables.iter().filter(|t| tables.contains(t)).collect();
    assert_eq!(
        kept.len(),
        tables.len(),
        "tables {tables:?} read back as {:?}",
        back.tables
    );
});
