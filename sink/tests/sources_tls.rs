//! Verified TLS towards a source (`sslmode` verify-ca / verify-full with `sslrootcert`) on a real
//! PostgreSQL 15 that only accepts TLS, with a CA and a server certificate for `localhost` made
//! by the test: wrong CAs and wrong names are refused at creation with the field to fix and
//! nothing created; the right settings create sources whose Debezium connectors stream over
//! TLS (the cluster's `pg_hba.conf` has no plaintext TCP line) and are deleted cleanly.

mod common_sources;

use std::time::Duration;

use anyhow::{Context, Result};
use futures::FutureExt;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::panic::AssertUnwindSafe;
use tumbleweed_tests::{eventually, read_records, slot_active, stack, unique_suffix, Stack};

use common_sources::{assert_nothing_left, publication_exists, serve, Api, TlsPostgres};

fn body(name: &str, host: &str, port: u16, sslmode: &str, sslrootcert: Option<&str>) -> Value {
    let mut b = json!({
        "name": name, "host": host, "port": port, "database": "postgres", "user": "postgres",
        "tables": ["public.items"], "heartbeat_interval_s": 0, "sslmode": sslmode,
    });
    if let Some(r) = sslrootcert {
        b["sslrootcert"] = json!(r);
    }
    b
}

/// A creation the sink must refuse: the request's TLS settings, and what the answer must say.
struct Refusal<'a> {
    sslmode: &'a str,
    host: &'a str,
    sslrootcert: Option<&'a str>,
    status: StatusCode,
    field: &'a str,
    words: &'a str,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verified_tls_refuses_wrong_ca_and_name_and_streams_when_right() -> Result<()> {
    let stack = stack();
    let api = serve(stack).await;
    let pg = tokio::task::spawn_blocking(TlsPostgres::start).await??;
    let db = pg.client().await?;
    let id = unique_suffix();
    // Whatever happens, the sources this test creates are deleted before the cluster stops (a
    // connector left in the shared Connect would retry a dead database forever).
    let outcome = AssertUnwindSafe(scenario(stack, &api, &pg, &db, &id))
        .catch_unwind()
        .await;
    for name in [format!("tlsfull_{id}"), format!("tlsca_{id}")] {
        let _ = api.delete(&format!("/v1/sources/{name}")).await;
    }
    drop(db);
    drop(pg);
    match outcome {
        Ok(result) => result,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

async fn scenario(
    stack: &Stack,
    api: &Api,
    pg: &TlsPostgres,
    db: &tokio_postgres::Client,
    id: &str,
) -> Result<()> {
    db.batch_execute("CREATE TABLE public.items (id int PRIMARY KEY, name text NOT NULL);")
        .await?;
    let ca = pg.ca_path.to_str().unwrap().to_string();
    let other = pg.other_ca_path.to_str().unwrap().to_string();

    // Refusals: each names the field to change and says what failed.
    let refusals = [
        Refusal {
            sslmode: "verify-full",
            host: "127.0.0.1",
            sslrootcert: Some(&ca),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            field: "host",
            words: "is not valid for 127.0.0.1 (it names localhost): connect with a name in the certificate, or use sslmode verify-ca",
        },
        Refusal {
            sslmode: "verify-full",
            host: "localhost",
            sslrootcert: Some(&other),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            field: "sslrootcert",
            words: "is not signed by a CA in sslrootcert",
        },
        Refusal {
            sslmode: "verify-ca",
            host: "127.0.0.1",
            sslrootcert: Some(&other),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            field: "sslrootcert",
            words: "is not signed by a CA in sslrootcert",
        },
        Refusal {
            sslmode: "verify-full",
            host: "localhost",
            sslrootcert: Some("rds"),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            field: "sslrootcert",
            words: "is not signed by a CA in sslrootcert rds (the Amazon RDS CA bundle)",
        },
        Refusal {
            sslmode: "verify-full",
            host: "localhost",
            sslrootcert: None,
            status: StatusCode::BAD_REQUEST,
            field: "sslrootcert",
            words: "sslmode verify-full verifies the server certificate and needs sslrootcert",
        },
        Refusal {
            sslmode: "verify-ca",
            host: "localhost",
            sslrootcert: Some("/nonexistent/tumbleweed-ca.pem"),
            status: StatusCode::BAD_REQUEST,
            field: "sslrootcert",
            words: "cannot read it",
        },
    ];
    for (i, r) in refusals.into_iter().enumerate() {
        let Refusal {
            sslmode: mode,
            host,
            sslrootcert: root,
            status,
            field,
            words,
        } = r;
        let name = format!("tlsbad{i}_{id}");
        let (s, b) = api
            .post("/v1/sources", &body(&name, host, pg.port, mode, root))
            .await?;
        let case = format!("{mode} {host} {root:?}");
        assert_eq!(s, status, "{case}: {b}");
        assert_eq!(b["field"], json!(field), "{case}: {b}");
        let message = b["error"].as_str().unwrap_or_default();
        assert!(message.contains(words), "{case}: {message}");
        if status == StatusCode::UNPROCESSABLE_ENTITY {
            assert!(
                message.contains(&format!(":{}", pg.port)),
                "{case}: {message}"
            );
            if field == "sslrootcert" && root != Some("rds") {
                assert!(message.contains("other-ca.pem"), "{case}: {message}");
            }
        }
        assert_nothing_left(stack, db, &name).await?;
    }

    // verify-full with the certificate's name, and verify-ca by address: both created, and
    // each connector streams a row over TLS.
    let full = format!("tlsfull_{id}");
    let ca_only = format!("tlsca_{id}");
    for (name, mode, host) in [
        (&full, "verify-full", "localhost"),
        (&ca_only, "verify-ca", "127.0.0.1"),
    ] {
        let (s, b) = api
            .post("/v1/sources", &body(name, host, pg.port, mode, Some(&ca)))
            .await?;
        assert_eq!(s, StatusCode::CREATED, "{mode} {host}: {b}\n{}", pg.log());
        assert_eq!(b["sslmode"], json!(mode), "{b}");
        assert_eq!(b["sslrootcert"], json!(ca), "{b}");
        let config: Value = reqwest::get(format!(
            "{}/connectors/tumbleweed-{name}/config",
            stack.connect_url
        ))
        .await?
        .json()
        .await?;
        assert_eq!(config["database.sslmode"], json!(mode), "{config}");
        assert_eq!(config["database.sslrootcert"], json!(ca), "{config}");
        eventually(
            "the slot to become active",
            Duration::from_secs(60),
            || async {
                Ok(slot_active(db, &format!("tw_local_{name}"))
                    .await?
                    .filter(|a| *a))
            },
        )
        .await?;
    }
    // Every walsender (one per connector) is on TLS.
    let row = db
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE s.ssl)
             FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
             WHERE a.backend_type = 'walsender'",
            &[],
        )
        .await?;
    let (walsenders, on_tls): (i64, i64) = (row.get(0), row.get(1));
    assert_eq!((walsenders, on_tls), (2, 2), "walsenders and those on TLS");

    db.batch_execute("INSERT INTO public.items VALUES (1, 'over verified TLS');")
        .await?;
    for name in [&full, &ca_only] {
        let topic = format!("{name}.public.items");
        let records = read_records(&stack.kafka_bootstrap, &topic, 1, Duration::from_secs(60))
            .await
            .with_context(|| format!("reading {topic}"))?;
        let value = records[0].value.clone().unwrap_or_default();
        assert_eq!(
            value["after"],
            json!({"id": 1, "name": "over verified TLS"}),
            "{value}"
        );
    }

    // The source view keeps the settings; deletion reaches the database over verified TLS.
    let (s, view) = api.get(&format!("/v1/sources/{full}")).await?;
    assert_eq!(s, StatusCode::OK, "{view}");
    assert_eq!(
        (&view["sslmode"], &view["sslrootcert"]),
        (&json!("verify-full"), &json!(ca))
    );
    for name in [&full, &ca_only] {
        let (s, report) = api.delete(&format!("/v1/sources/{name}")).await?;
        assert_eq!(s, StatusCode::OK, "{report}");
        assert_eq!(
            report,
            json!({"connector": "deleted", "slot": "dropped", "publication": "dropped"})
        );
        let slot = format!("tw_local_{name}");
        assert!(slot_active(db, &slot).await?.is_none(), "slot {slot} left");
        assert!(!publication_exists(db, &slot).await?, "publication left");
    }
    Ok(())
}
