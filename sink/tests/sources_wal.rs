//! The WAL guard on the real stack: `GET /v1/slots` lists a source's slot with its retained WAL
//! and status, finds orphans and drops them only when the slot's name is typed back (never a
//! source's slot, an active slot, a slot a connector names, or a slot that is not this
//! deployment's); thresholds turn into warn/critical; metrics carry the numbers.
//! And the reason for the heartbeat: an idle source's slot retains little WAL while another
//! database of the same cluster writes heavily, unlike a source without heartbeat.

mod common_sources;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tumbleweed_tests::{eventually, slot_active, stack, unique_suffix};

use common_sources::{retained, serve, serve_with, source_body, Api};

async fn slot_entry(api: &Api, slot: &str) -> Result<Value> {
    let (status, body) = api.get("/v1/slots").await?;
    ensure!(status == StatusCode::OK, "GET /v1/slots: {status} {body}");
    body["slots"]
        .as_array()
        .context("slots array")?
        .iter()
        .find(|s| s["slot"] == json!(slot))
        .cloned()
        .with_context(|| format!("slot {slot} not listed in {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slots_are_measured_and_only_inactive_orphans_are_dropped() -> Result<()> {
    let stack = stack();
    let api = serve(stack).await;
    let id = unique_suffix();
    let name = format!("w_{id}");
    let db = format!("wal_{id}");
    let pg = stack.create_database(&db).await?;
    pg.batch_execute("CREATE TABLE public.items (id int PRIMARY KEY, pad text)")
        .await?;
    let (s, b) = api
        .post(
            "/v1/sources",
            &source_body(stack, &name, &db, &["public.items"], 60),
        )
        .await?;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let own = format!("tw_local_{name}");
    eventually(
        "the slot to become active",
        Duration::from_secs(60),
        || async { Ok(slot_active(&pg, &own).await?.filter(|a| *a)) },
    )
    .await?;

    // Two orphans: one left idle, one kept active by pg_recvlogical.
    let ghost = format!("tw_local_ghost_{id}");
    let busy_ghost = format!("tw_local_ghost2_{id}");
    pg.execute(
        "SELECT pg_create_logical_replication_slot($1, 'pgoutput')",
        &[&ghost],
    )
    .await?;
    pg.execute(
        "SELECT pg_create_logical_replication_slot($1, 'test_decoding')",
        &[&busy_ghost],
    )
    .await?;
    pg.batch_execute(
        "INSERT INTO public.items SELECT g, repeat('x', 100) FROM generate_series(1, 100) g",
    )
    .await?;

    let mine = slot_entry(&api, &own).await?;
    assert_eq!(mine["source"], json!(name), "{mine}");
    assert_eq!(mine["owned"], json!(true));
    assert_eq!(mine["orphan"], json!(false));
    assert_eq!(mine["active"], json!(true));
    assert_eq!(mine["database"], json!(db));
    assert_eq!(mine["status"], json!("ok"));
    assert!(mine["retained_bytes"].as_i64().is_some(), "{mine}");
    let orphan = slot_entry(&api, &ghost).await?;
    assert_eq!(orphan["orphan"], json!(true), "{orphan}");
    assert_eq!(orphan["source"], Value::Null);
    assert_eq!(orphan["active"], json!(false));
    assert!(
        orphan["retained_bytes"].as_i64().unwrap_or(0) > 0,
        "{orphan}"
    );
    let via = orphan["via"].as_str().context("via")?.to_string();
    let (_, body) = api.get("/v1/slots").await?;
    assert_eq!(
        body["thresholds"],
        json!({"warn_bytes": 1u64 << 30, "critical_bytes": 10u64 << 30})
    );

    // Metrics from the last scan.
    let metrics = tumbleweed_sink::metrics::encode_with(|r| api.service.register_metrics(r));
    let labels = format!("source=\"{name}\",slot=\"{own}\",database=\"{db}\"");
    assert!(
        metrics.contains(&format!("tumbleweed_slot_retained_wal_bytes{{{labels}")),
        "{metrics}"
    );
    assert!(metrics.contains(&format!(
        "tumbleweed_slot_active{{{labels},server=\"{}:{}\"}} 1",
        stack.pg_host, stack.pg_port
    )));

    // The same numbers as CloudWatch EMF lines: one per slot, and the largest in the fixed
    // line the retained-WAL alarm reads.
    let emf = tumbleweed_sink::emf::Sources {
        metrics: Default::default(),
        memory: tumbleweed_sink::memory::MemoryGuard::new(None),
        sources: api.service.clone(),
    };
    let lines: Vec<Value> =
        tumbleweed_sink::emf::lines("Tumbleweed", "tw", 1_760_000_000_000, &emf.snapshot())
            .iter()
            .map(|l| serde_json::from_str(l))
            .collect::<Result<_, _>>()?;
    let ghost_line = lines
        .iter()
        .find(|l| l["Slot"] == json!(ghost))
        .with_context(|| format!("no EMF line for {ghost}: {lines:?}"))?;
    let ghost_bytes = ghost_line["RetainedWalBytes"].as_f64().unwrap_or(0.0);
    assert!(ghost_bytes > 0.0, "{ghost_line}");
    assert!(lines.iter().any(|l| l["Slot"] == json!(own)));
    assert!(
        lines[0]["MaxRetainedWalBytes"].as_f64().unwrap_or(0.0) >= ghost_bytes,
        "{}",
        lines[0]
    );

    // Thresholds: tiny ones make the idle orphan warn, then critical.
    let warn = serve_with(stack, 1, 1 << 50).await;
    assert_eq!(slot_entry(&warn, &ghost).await?["status"], json!("warn"));
    let critical = serve_with(stack, 1, 2).await;
    // The periodic guard records the same scan for the metrics.
    let shutdown = tokio_util::sync::CancellationToken::new();
    let guard = critical.service.spawn_wal_guard(shutdown.clone());
    eventually(
        "the WAL guard's first pass",
        Duration::from_secs(30),
        || async {
            let m = tumbleweed_sink::metrics::encode_with(|r| critical.service.register_metrics(r));
            Ok(m.contains(&format!("slot=\"{ghost}\"")).then_some(()))
        },
    )
    .await?;
    shutdown.cancel();
    guard.await?;
    assert_eq!(
        slot_entry(&critical, &ghost).await?["status"],
        json!("critical")
    );

    // Refusals: a source's slot, a foreign slot, an unknown source, an active orphan.
    let (s, b) = api
        .delete(&format!("/v1/slots/{via}/{own}?confirm={own}"))
        .await?;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert!(
        b["error"]
            .as_str()
            .unwrap()
            .contains("delete the source instead"),
        "{b}"
    );
    let (s, b) = api
        .delete(&format!(
            "/v1/slots/{via}/someone_elses_slot?confirm=someone_elses_slot"
        ))
        .await?;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    let (s, b) = api
        .delete(&format!("/v1/slots/nosuch_{id}/{ghost}?confirm={ghost}"))
        .await?;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    let mut reader = Command::new("pg_recvlogical")
        .args([
            "-h",
            &stack.pg_host,
            "-p",
            &stack.pg_port.to_string(),
            "-U",
            "postgres",
            "-d",
            &db,
        ])
        .args(["-S", &busy_ghost, "--start", "-f", "/dev/null"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting pg_recvlogical")?;
    eventually(
        "pg_recvlogical to hold the slot",
        Duration::from_secs(30),
        || async { Ok(slot_active(&pg, &busy_ghost).await?.filter(|a| *a)) },
    )
    .await?;
    let (s, b) = api
        .delete(&format!(
            "/v1/slots/{via}/{busy_ghost}?confirm={busy_ghost}"
        ))
        .await?;
    reader.kill()?;
    reader.wait()?;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert!(b["error"].as_str().unwrap().contains("is active"), "{b}");

    // Not this deployment's, or still named by a connector: never orphans, never dropped.
    foreign_and_claimed_slots_are_kept(&api, &pg, &via, &id, &db).await?;

    // An orphan goes only with its name typed back.
    for query in ["", "?confirm=", "?confirm=tw_local_other"] {
        let (s, b) = api
            .delete(&format!("/v1/slots/{via}/{ghost}{query}"))
            .await?;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{query}: {b}");
        assert_eq!(b["field"], json!("confirm"), "{b}");
        assert!(
            b["error"]
                .as_str()
                .unwrap()
                .contains(&format!("?confirm={ghost}")),
            "{b}"
        );
    }
    ensure!(
        slot_active(&pg, &ghost).await?.is_some(),
        "an unconfirmed drop dropped the slot"
    );

    // The orphans go; the source's slot stays.
    let (s, b) = api
        .delete(&format!("/v1/slots/{via}/{ghost}?confirm={ghost}"))
        .await?;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["slot"], json!("dropped"));
    ensure!(
        slot_active(&pg, &ghost).await?.is_none(),
        "orphan still there"
    );
    eventually(
        "pg_recvlogical to let go",
        Duration::from_secs(30),
        || async { Ok(slot_active(&pg, &busy_ghost).await?.filter(|a| !*a)) },
    )
    .await?;
    let (s, b) = api
        .delete(&format!(
            "/v1/slots/{via}/{busy_ghost}?confirm={busy_ghost}"
        ))
        .await?;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, _) = api
        .delete(&format!("/v1/slots/{via}/{ghost}?confirm={ghost}"))
        .await?;
    assert_eq!(s, StatusCode::NOT_FOUND);
    ensure!(
        slot_active(&pg, &own).await? == Some(true),
        "the source's slot was touched"
    );

    let (s, b) = api.delete(&format!("/v1/sources/{name}")).await?;
    assert_eq!(s, StatusCode::OK, "{b}");
    Ok(())
}

/// Slots on the same server that look abandoned but are not this deployment's to drop: another
/// deployment's, one from before deployment ids, and one named by a connector whose config the
/// sink cannot read as a source (created in Kafka Connect by hand, stopped).
async fn foreign_and_claimed_slots_are_kept(
    api: &Api,
    pg: &tokio_postgres::Client,
    via: &str,
    id: &str,
    db: &str,
) -> Result<()> {
    let other = format!("tw_other_{id}");
    let legacy = format!("tumbleweed_legacy_{id}");
    let claimed = format!("tw_local_claimed_{id}");
    for slot in [&other, &legacy, &claimed] {
        pg.execute(
            "SELECT pg_create_logical_replication_slot($1, 'pgoutput')",
            &[slot],
        )
        .await?;
    }
    let connector = format!("handmade-{id}");
    let stack = stack();
    let http = reqwest::Client::new();
    let created = http
        .post(format!("{}/connectors", stack.connect_url))
        .json(&json!({
            "name": connector,
            "config": {
                "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
                "slot.name": claimed,
                "topic.prefix": format!("handmade_{id}"),
                "plugin.name": "pgoutput",
                "database.hostname": stack.pg_host,
                "database.port": stack.pg_port.to_string(),
                "database.user": "postgres",
                "database.dbname": db,
            },
            "initial_state": "STOPPED",
        }))
        .send()
        .await?;
    ensure!(
        created.status().is_success(),
        "creating a stopped connector: {} {}",
        created.status(),
        created.text().await?
    );
    let outcome = async {
        for (slot, owner) in [
            (&other, None),
            (&legacy, None),
            (&claimed, Some(&connector)),
        ] {
            // Until Connect has taken the new connector in, nothing is an orphan; then the
            // connector owns its slot.
            let entry = eventually(
                &format!("{slot} to be listed with its owner"),
                Duration::from_secs(30),
                || async {
                    let entry = slot_entry(api, slot).await?;
                    Ok((entry["source"] == json!(owner)).then_some(entry))
                },
            )
            .await?;
            assert_eq!(entry["orphan"], json!(false), "{entry}");
            assert_eq!(
                entry["owned"],
                json!(slot != &other && slot != &legacy),
                "{entry}"
            );
            assert_eq!(entry["source"], json!(owner), "{entry}");
            let (s, b) = api
                .delete(&format!("/v1/slots/{via}/{slot}?confirm={slot}"))
                .await?;
            assert_eq!(s, StatusCode::CONFLICT, "{slot}: {b}");
            ensure!(slot_active(pg, slot).await?.is_some(), "{slot} was dropped");
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    http.delete(format!("{}/connectors/{connector}", stack.connect_url))
        .send()
        .await?;
    for slot in [&other, &legacy, &claimed] {
        pg.execute("SELECT pg_drop_replication_slot($1)", &[slot])
            .await?;
    }
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_bounds_the_wal_an_idle_source_retains() -> Result<()> {
    let stack = stack();
    let api = serve(stack).await;
    let id = unique_suffix();
    let (on, off) = (format!("hbon_{id}"), format!("hboff_{id}"));
    for (name, heartbeat) in [(&on, 1), (&off, 0)] {
        let pg = stack.create_database(name).await?;
        pg.batch_execute("CREATE TABLE public.t (id int PRIMARY KEY)")
            .await?;
        let (s, b) = api
            .post(
                "/v1/sources",
                &source_body(stack, name, name, &["public.t"], heartbeat),
            )
            .await?;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    let pg = stack.create_database(&format!("busy_{id}")).await?;
    let (slot_on, slot_off) = (format!("tw_local_{on}"), format!("tw_local_{off}"));
    for slot in [&slot_on, &slot_off] {
        eventually(
            "the slot to become active",
            Duration::from_secs(60),
            || async { Ok(slot_active(&pg, slot).await?.filter(|a| *a)) },
        )
        .await?;
    }

    // About 40 MB of WAL in another database of the same cluster.
    let start: String = pg
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await?
        .get(0);
    pg.batch_execute(
        "CREATE TABLE big (id int PRIMARY KEY, pad text);
         INSERT INTO big SELECT g, repeat('x', 400) FROM generate_series(1, 80000) g;",
    )
    .await?;
    let written: i64 = pg
        .query_one(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::text::pg_lsn)::bigint",
            &[&start],
        )
        .await?
        .get(0);

    // Logical slots advance restart_lsn at the next running-xacts record (every 15 s at most).
    let bound: i64 = 8 << 20;
    let t0 = Instant::now();
    let with = eventually(
        "the heartbeat source's slot to advance",
        Duration::from_secs(90),
        || async {
            let r = retained(&pg, &slot_on).await?;
            Ok((r < bound).then_some(r))
        },
    )
    .await?;
    let without = retained(&pg, &slot_off).await?;
    println!(
        "WAL written: {written} bytes; retained with heartbeat (1 s): {with} bytes (after {:?}); without heartbeat: {without} bytes",
        t0.elapsed()
    );
    // Through the API too.
    let listed = slot_entry(&api, &slot_off).await?;
    assert!(
        listed["retained_bytes"].as_i64().unwrap_or(0) >= without,
        "{listed}"
    );

    assert!(written > 30 << 20, "the load wrote {written} bytes of WAL");
    assert!(
        without >= written,
        "without heartbeat the slot keeps all of it: {without} < {written}"
    );
    assert!(
        with < bound && without > with + (20 << 20),
        "with {with}, without {without}"
    );

    for name in [&on, &off] {
        let (s, b) = api.delete(&format!("/v1/sources/{name}")).await?;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    Ok(())
}
