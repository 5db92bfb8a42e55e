//! Sources end to end on the real stack: two sources on two databases of one server side by
//! side, events from both tables of a source, duplicate names, and a deletion that removes the
//! connector, slot and publication (and a second DELETE that is still fine).

mod common_sources;

use std::time::Duration;

use anyhow::{ensure, Result};
use reqwest::StatusCode;
use serde_json::json;
use tumbleweed_tests::{eventually, read_records, slot_active, stack, unique_suffix};

use common_sources::{publication_exists, serve, source_body};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sources_stream_side_by_side_and_delete_cleans_up() -> Result<()> {
    let stack = stack();
    let api = serve(stack).await;
    let id = unique_suffix();
    let (a, b) = (format!("a_{id}"), format!("b_{id}"));
    let (db_a, db_b) = (format!("srca_{id}"), format!("srcb_{id}"));
    let pg_a = stack.create_database(&db_a).await?;
    let pg_b = stack.create_database(&db_b).await?;
    pg_a.batch_execute(
        "CREATE TABLE public.items (id int PRIMARY KEY, name text NOT NULL);
         CREATE TABLE public.orders (id int PRIMARY KEY, item int NOT NULL);",
    )
    .await?;
    pg_b.batch_execute("CREATE TABLE public.items (id int PRIMARY KEY, name text NOT NULL);")
        .await?;

    let (status, body) = api
        .post(
            "/v1/sources",
            &source_body(stack, &a, &db_a, &["public.items", "public.orders"], 1),
        )
        .await?;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["slot"], json!(format!("tw_local_{a}")));
    assert_eq!(
        body["topics"],
        json!([format!("{a}.public.items"), format!("{a}.public.orders")])
    );
    assert!(body.get("password").is_none(), "{body}");
    let (status, body) = api
        .post(
            "/v1/sources",
            &source_body(stack, &b, &db_b, &["public.items"], 60),
        )
        .await?;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    for (pg, name) in [(&pg_a, &a), (&pg_b, &b)] {
        let slot = format!("tw_local_{name}");
        eventually(
            "the slot to become active",
            Duration::from_secs(60),
            || async { Ok(slot_active(pg, &slot).await?.filter(|x| *x)) },
        )
        .await?;
    }

    // A second source with the same name is refused.
    let (status, body) = api
        .post(
            "/v1/sources",
            &source_body(stack, &a, &db_b, &["public.items"], 60),
        )
        .await?;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["field"], json!("name"));

    pg_a.batch_execute(
        "INSERT INTO public.items VALUES (1, 'apple');
         INSERT INTO public.orders VALUES (10, 1);",
    )
    .await?;
    pg_b.batch_execute("INSERT INTO public.items VALUES (7, 'plum');")
        .await?;
    let t = Duration::from_secs(60);
    let items = read_records(&stack.kafka_bootstrap, &format!("{a}.public.items"), 1, t).await?;
    let orders = read_records(&stack.kafka_bootstrap, &format!("{a}.public.orders"), 1, t).await?;
    let other = read_records(&stack.kafka_bootstrap, &format!("{b}.public.items"), 1, t).await?;
    let value = |r: &tumbleweed_tests::Record| r.value.clone().unwrap_or_default();
    assert_eq!(value(&items[0])["after"], json!({"id": 1, "name": "apple"}));
    assert_eq!(
        items[0].key,
        Some(json!({"id": 1})),
        "JSON keys without schemas"
    );
    assert_eq!(value(&orders[0])["after"], json!({"id": 10, "item": 1}));
    assert_eq!(value(&other[0])["after"], json!({"id": 7, "name": "plum"}));
    assert_eq!(value(&other[0])["source"]["db"], json!(db_b));

    // Listing and details: config and state, never the password.
    let (status, list) = api.get("/v1/sources").await?;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = list["sources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert!(
        names.contains(&a.as_str()) && names.contains(&b.as_str()),
        "{names:?}"
    );
    assert!(
        !list.to_string().contains("unused-with-trust-auth"),
        "a password leaked"
    );
    let (status, one) = api.get(&format!("/v1/sources/{a}")).await?;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one["connector_state"], json!("RUNNING"));
    assert_eq!(one["tasks"][0]["state"], json!("RUNNING"), "{one}");
    assert_eq!(one["database"], json!(db_a));
    assert_eq!(one["heartbeat_interval_s"], json!(1));
    assert!(!one.to_string().contains("unused-with-trust-auth"));

    // Delete a: connector, slot and publication gone; a second DELETE is fine.
    let (status, report) = api.delete(&format!("/v1/sources/{a}")).await?;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        report,
        json!({"connector": "deleted", "slot": "dropped", "publication": "dropped"})
    );
    let slot_a = format!("tw_local_{a}");
    ensure!(slot_active(&pg_a, &slot_a).await?.is_none(), "slot left");
    ensure!(
        !publication_exists(&pg_a, &slot_a).await?,
        "publication left"
    );
    ensure!(!stack
        .connect()
        .list()
        .await?
        .contains(&format!("tumbleweed-{a}")));
    let (status, again) = api.delete(&format!("/v1/sources/{a}")).await?;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["connector"], json!("absent"));
    let (status, _) = api.get(&format!("/v1/sources/{a}")).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // b is untouched and still streams.
    pg_b.batch_execute("INSERT INTO public.items VALUES (8, 'fig');")
        .await?;
    let more = read_records(&stack.kafka_bootstrap, &format!("{b}.public.items"), 2, t).await?;
    assert_eq!(value(&more[1])["after"], json!({"id": 8, "name": "fig"}));

    let (status, report) = api.delete(&format!("/v1/sources/{b}")).await?;
    assert_eq!(status, StatusCode::OK, "{report}");
    ensure!(slot_active(&pg_b, &format!("tw_local_{b}"))
        .await?
        .is_none());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_mode_routes_events_per_aggregate_type() -> Result<()> {
    let stack = stack();
    let api = serve(stack).await;
    let id = unique_suffix();
    let name = format!("o_{id}");
    let db = format!("outbox_{id}");
    let pg = stack.create_database(&db).await?;
    pg.batch_execute(
        "CREATE TABLE public.outbox (id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
             aggregatetype text NOT NULL, aggregateid text NOT NULL, type text NOT NULL, payload jsonb);
         CREATE TABLE public.bad_outbox (id uuid PRIMARY KEY, aggregatetype text, payload jsonb);",
    )
    .await?;
    let mut body = source_body(stack, &name, &db, &["public.bad_outbox"], 1);
    body["mode"] = json!("outbox");
    let (status, b) = api.post("/v1/sources", &body).await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(
        b["error"].as_str().unwrap().contains("aggregateid, type"),
        "{b}"
    );
    assert_eq!(b["field"], json!("tables"));

    body["tables"] = json!([]); // defaults to public.outbox
    let (status, b) = api.post("/v1/sources", &body).await?;
    assert_eq!(status, StatusCode::CREATED, "{b}");
    assert_eq!(b["mode"], json!("outbox"));
    assert_eq!(b["tables"], json!(["public.outbox"]));
    eventually(
        "the slot to become active",
        Duration::from_secs(60),
        || async {
            Ok(slot_active(&pg, &format!("tw_local_{name}"))
                .await?
                .filter(|x| *x))
        },
    )
    .await?;
    pg.batch_execute(
        "INSERT INTO public.outbox (aggregatetype, aggregateid, type, payload)
         VALUES ('order', 'o-1', 'OrderPlaced', '{\"total\": 5}');",
    )
    .await?;
    let t = Duration::from_secs(60);
    let events = read_records(
        &stack.kafka_bootstrap,
        &format!("{name}.outbox.order"),
        1,
        t,
    )
    .await?;
    assert_eq!(events[0].key, Some(json!("o-1")));
    assert_eq!(events[0].value, Some(json!({"total": 5})));
    // Heartbeats flow to their own topic and do not go through the event router.
    let beats = read_records(
        &stack.kafka_bootstrap,
        &format!("{name}.public.tumbleweed_heartbeat"),
        1,
        t,
    )
    .await?;
    assert_eq!(
        beats[0].value.as_ref().unwrap()["after"]["source"],
        json!(name)
    );
    let (_, one) = api.get(&format!("/v1/sources/{name}")).await?;
    assert_eq!(one["connector_state"], json!("RUNNING"), "{one}");
    assert_eq!(one["tasks"][0]["state"], json!("RUNNING"), "{one}");

    let (status, report) = api.delete(&format!("/v1/sources/{name}")).await?;
    assert_eq!(status, StatusCode::OK, "{report}");
    Ok(())
}

/// A DELETE that cannot reach the database answers 503 with what it left (the connector,
/// stopped, which keeps the credentials); the next DELETE finishes the job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_is_retry_safe_when_the_database_is_unreachable() -> Result<()> {
    let stack = stack();
    let api = serve(stack).await;
    let id = unique_suffix();
    let name = format!("d_{id}");
    let db = format!("retry_{id}");
    let role = format!("cdc_{id}");
    let admin = stack.pg("postgres").await?;
    // Separate statements: CREATE DATABASE cannot run in a multi-statement batch.
    admin
        .batch_execute(&format!("CREATE ROLE {role} LOGIN REPLICATION"))
        .await?;
    admin
        .batch_execute(&format!("CREATE DATABASE {db} OWNER {role}"))
        .await?;
    let pg = stack.pg(&db).await?;
    pg.batch_execute(&format!(
        "CREATE TABLE public.items (id int PRIMARY KEY); ALTER TABLE public.items OWNER TO {role};"
    ))
    .await?;
    let mut body = source_body(stack, &name, &db, &["public.items"], 60);
    body["user"] = json!(role);
    let (status, b) = api.post("/v1/sources", &body).await?;
    assert_eq!(status, StatusCode::CREATED, "{b}");
    let slot = format!("tw_local_{name}");
    eventually(
        "the slot to become active",
        Duration::from_secs(60),
        || async { Ok(slot_active(&pg, &slot).await?.filter(|x| *x)) },
    )
    .await?;

    // The sink can no longer log in as the source's user.
    admin
        .batch_execute(&format!("ALTER ROLE {role} NOLOGIN"))
        .await?;
    let (status, partial) = api.delete(&format!("/v1/sources/{name}")).await?;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{partial}");
    assert_eq!(partial["connector"], json!("stopped"), "{partial}");
    assert_eq!(partial["slot"], json!("unknown"));
    assert!(
        partial["error"].as_str().unwrap().contains("retry"),
        "{partial}"
    );
    ensure!(
        slot_active(&pg, &slot).await?.is_some(),
        "the slot is still there"
    );
    let (_, one) = api.get(&format!("/v1/sources/{name}")).await?;
    assert_eq!(one["connector_state"], json!("STOPPED"), "{one}");
    assert_eq!(
        one["declared"],
        json!(false),
        "withdrawn, not yet gone: {one}"
    );

    admin
        .batch_execute(&format!("ALTER ROLE {role} LOGIN"))
        .await?;
    let (status, report) = api.delete(&format!("/v1/sources/{name}")).await?;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        report,
        json!({"connector": "deleted", "slot": "dropped", "publication": "dropped"})
    );
    ensure!(slot_active(&pg, &slot).await?.is_none(), "slot left");
    ensure!(!publication_exists(&pg, &slot).await?, "publication left");
    Ok(())
}

/// Every connector created or deleted makes the Connect cluster rebalance, and during a
/// rebalance Connect answers reads with `500 … a rebalance is expected` and writes with `409`.
/// Four sources created and deleted at once while their pages are read in a loop: no request
/// may fail (CI once saw a DELETE answer 502 because a config read met a rebalance).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_and_writes_ride_out_connect_rebalances() -> Result<()> {
    let stack = stack();
    let api = std::sync::Arc::new(serve(stack).await);
    let id = unique_suffix();
    let names: Vec<String> = (0..4).map(|i| format!("r{i}_{id}")).collect();
    for (i, _) in names.iter().enumerate() {
        let pg = stack.create_database(&format!("reb{i}_{id}")).await?;
        pg.batch_execute("CREATE TABLE public.items (id int PRIMARY KEY);")
            .await?;
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (api, names, stop) = (api.clone(), names.clone(), stop.clone());
        tokio::spawn(async move {
            let mut failures = Vec::new();
            let mut reads = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for path in names
                    .iter()
                    .map(|n| format!("/v1/sources/{n}"))
                    .chain(["/v1/sources".to_string()])
                {
                    let (status, body) = api.get(&path).await.expect("GET");
                    reads += 1;
                    if status.is_server_error() {
                        failures.push(format!("GET {path}: {status} {body}"));
                    }
                }
            }
            (reads, failures)
        })
    };
    let created = futures::future::join_all(names.iter().enumerate().map(|(i, n)| {
        let api = api.clone();
        let body = source_body(stack, n, &format!("reb{i}_{id}"), &["public.items"], 60);
        // Staggered, so that each creation's checks meet the rebalance the previous one began.
        async move {
            tokio::time::sleep(Duration::from_millis(400 * i as u64)).await;
            api.post("/v1/sources", &body).await
        }
    }))
    .await;
    for r in created {
        let (status, body) = r?;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let deleted = futures::future::join_all(names.iter().enumerate().map(|(i, n)| {
        let api = api.clone();
        let path = format!("/v1/sources/{n}");
        async move {
            tokio::time::sleep(Duration::from_millis(400 * i as u64)).await;
            api.delete(&path).await
        }
    }))
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (reads, failures) = reader.await?;
    for r in deleted {
        let (status, body) = r?;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert!(
        failures.is_empty(),
        "{} of {reads} reads failed: {failures:#?}",
        failures.len()
    );
    Ok(())
}
