//! End-to-end smoke test of the local stack, without the sink: PostgreSQL → Debezium (Kafka
//! Connect) → broker, read back with `rdkafka`. Then the connector is deleted and its slot
//! dropped, and the test checks nothing is left in `pg_replication_slots`.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};
use tumbleweed_tests::{eventually, read_records, slot_active, stack, unique_suffix};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_changes_flow_in_order_and_the_slot_is_dropped_after_the_connector() -> Result<()> {
    let stack = stack();
    let id = unique_suffix();
    let db = format!("smoke_{id}");
    let prefix = format!("smoke_{id}");
    let slot = format!("tumbleweed_smoke_{id}");
    let connector = format!("smoke-{id}");

    let pg = stack.create_database(&db).await?;
    pg.batch_execute(
        "CREATE TABLE public.items (id int PRIMARY KEY, name text NOT NULL, qty int NOT NULL);
         ALTER TABLE public.items REPLICA IDENTITY FULL;
         CREATE TABLE public.tumbleweed_heartbeat (id int PRIMARY KEY, beat_at timestamptz NOT NULL);
         INSERT INTO public.tumbleweed_heartbeat VALUES (1, 'epoch');",
    )
    .await
    .context("creating the tables")?;

    let connect = stack.connect();
    connect
        .create(
            &connector,
            json!({
                "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
                "plugin.name": "pgoutput",
                "database.hostname": stack.pg_host,
                "database.port": stack.pg_port.to_string(),
                "database.user": "postgres",
                "database.password": "unused-with-trust-auth",
                "database.dbname": db,
                "topic.prefix": prefix,
                "slot.name": slot,
                "publication.name": slot,
                "publication.autocreate.mode": "filtered",
                "table.include.list": "public.items",
                "snapshot.mode": "no_data",
                "heartbeat.interval.ms": "500",
                "heartbeat.action.query":
                    "UPDATE public.tumbleweed_heartbeat SET beat_at = now() WHERE id = 1",
                "poll.interval.ms": "5",
                "topic.creation.default.replication.factor": stack.replication_factor.to_string(),
                // Records and source offsets in one Kafka transaction: the connector must
                // support it (Connect refuses the config otherwise) and the worker enables it.
                "exactly.once.support": "required",
                "topic.creation.default.partitions": "1",
            }),
        )
        .await?;
    connect
        .wait_running(&connector, Duration::from_secs(60))
        .await?;
    // Changes are captured from the moment the slot exists and streaming has begun.
    eventually(
        "the slot to become active",
        Duration::from_secs(30),
        || async { Ok(slot_active(&pg, &slot).await?.filter(|a| *a)) },
    )
    .await?;

    for (id, name, qty) in [(1, "apple", 3), (2, "pear", 5), (3, "plum", 7)] {
        pg.execute(
            "INSERT INTO public.items VALUES ($1, $2, $3)",
            &[&id, &name, &qty],
        )
        .await?;
    }
    pg.execute("UPDATE public.items SET qty = 6 WHERE id = 2", &[])
        .await?;
    pg.execute("DELETE FROM public.items WHERE id = 3", &[])
        .await?;

    // 3 inserts, 1 update, 1 delete and the delete's tombstone.
    let topic = format!("{prefix}.public.items");
    let records = read_records(&stack.kafka_bootstrap, &topic, 6, Duration::from_secs(60)).await?;

    let expected: [(&str, i64, Option<Value>, Option<Value>); 5] = [
        (
            "c",
            1,
            None,
            Some(json!({"id": 1, "name": "apple", "qty": 3})),
        ),
        (
            "c",
            2,
            None,
            Some(json!({"id": 2, "name": "pear", "qty": 5})),
        ),
        (
            "c",
            3,
            None,
            Some(json!({"id": 3, "name": "plum", "qty": 7})),
        ),
        (
            "u",
            2,
            Some(json!({"id": 2, "name": "pear", "qty": 5})),
            Some(json!({"id": 2, "name": "pear", "qty": 6})),
        ),
        (
            "d",
            3,
            Some(json!({"id": 3, "name": "plum", "qty": 7})),
            None,
        ),
    ];
    for (i, (op, key_id, before, after)) in expected.iter().enumerate() {
        let r = &records[i];
        let v = r
            .value
            .as_ref()
            .with_context(|| format!("record {i} is a tombstone"))?;
        assert_eq!(v["op"], json!(op), "operation of record {i}: {v}");
        assert_eq!(r.key, Some(json!({"id": key_id})), "key of record {i}");
        assert_eq!(
            v["before"],
            before.clone().unwrap_or(Value::Null),
            "before of record {i}"
        );
        assert_eq!(
            v["after"],
            after.clone().unwrap_or(Value::Null),
            "after of record {i}"
        );
        assert_eq!(v["source"]["table"], json!("items"));
        assert_eq!(v["source"]["db"], json!(db));
        assert!(
            v["source"]["lsn"].as_i64().unwrap_or(0) > 0,
            "record {i} carries its LSN"
        );
    }
    // The delete is followed by a tombstone for the same key, for log compaction.
    assert_eq!(records[5].key, Some(json!({"id": 3})));
    assert!(records[5].value.is_none(), "record 5 is a tombstone");
    // One partition, consecutive offsets, strictly increasing LSNs: the commit order.
    assert!(records.iter().all(|r| r.partition == 0));
    assert!(records.windows(2).all(|w| w[1].offset > w[0].offset));
    let lsns: Vec<i64> = records[..5]
        .iter()
        .map(|r| r.value.as_ref().unwrap()["source"]["lsn"].as_i64().unwrap())
        .collect();
    assert!(
        lsns.windows(2).all(|w| w[1] > w[0]),
        "LSNs in commit order: {lsns:?}"
    );

    // The heartbeat action query writes to the source database on its interval.
    eventually("a heartbeat write", Duration::from_secs(30), || async {
        let row = pg
            .query_one(
                "SELECT beat_at > 'epoch'::timestamptz FROM public.tumbleweed_heartbeat WHERE id = 1",
                &[],
            )
            .await?;
        Ok(row.get::<_, bool>(0).then_some(()))
    })
    .await?;

    // Deleting the connector leaves its slot behind: wait until inactive, then drop it.
    connect.delete(&connector).await?;
    ensure!(
        !connect.list().await?.contains(&connector),
        "connector still listed after DELETE"
    );
    eventually(
        "the slot to become inactive",
        Duration::from_secs(60),
        || async { Ok(slot_active(&pg, &slot).await?.filter(|a| !*a).map(|_| ())) },
    )
    .await?;
    pg.execute("SELECT pg_drop_replication_slot($1)", &[&slot])
        .await
        .context("dropping the slot")?;
    pg.execute(&format!("DROP PUBLICATION \"{slot}\""), &[])
        .await
        .context("dropping the publication")?;
    assert_eq!(slot_active(&pg, &slot).await?, None, "slot {slot} is gone");
    let publications = pg
        .query("SELECT 1 FROM pg_publication WHERE pubname = $1", &[&slot])
        .await?;
    assert!(publications.is_empty(), "publication {slot} is gone");
    Ok(())
}
