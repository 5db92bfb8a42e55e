//! `tumbleweed status` (ECS) and the RDS half of `check-source`, against moto.

mod common;

use common::{run, sink_binary, stdout, tumbleweed, Moto};
use serde_json::{json, Value};
use tumbleweed_helper::check_source::{gather_rds, judge_rds};

#[tokio::test(flavor = "multi_thread")]
async fn status_reports_ecs_counts_as_json_and_table() {
    let moto = Moto::start();
    let ecs = aws_sdk_ecs::Client::new(&moto.sdk_config().await);
    ecs.create_cluster()
        .cluster_name("tw-cluster")
        .send()
        .await
        .unwrap();
    ecs.register_task_definition()
        .family("tw-sink")
        .container_definitions(
            aws_sdk_ecs::types::ContainerDefinition::builder()
                .name("sink")
                .image("tw-sink:1")
                .memory(512)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let services = [
        ("tw-sink", 2),
        ("tw-connect", 1),
        ("tw-broker-0", 1),
        ("tw-broker-1", 1),
        ("tw-controller-0", 1),
    ];
    for (name, desired) in services {
        ecs.create_service()
            .cluster("tw-cluster")
            .service_name(name)
            .task_definition("tw-sink")
            .desired_count(desired)
            .send()
            .await
            .unwrap();
    }
    // What moto itself says (tasks never actually run there).
    let direct = ecs
        .describe_services()
        .cluster("tw-cluster")
        .services("tw-sink")
        .send()
        .await
        .unwrap();
    let (running, pending) = (
        direct.services()[0].running_count(),
        direct.services()[0].pending_count(),
    );
    assert_eq!((running, pending), (0, 2), "moto keeps tasks pending");

    let dir = tempfile::tempdir().unwrap();
    let outputs = dir.path().join("outputs.json");
    let v = |x: Value| json!({"value": x, "type": "string", "sensitive": false});
    std::fs::write(
        &outputs,
        json!({
            "cluster_name": v(json!("tw-cluster")),
            "sink_service_name": v(json!("tw-sink")),
            "connect_service_name": v(json!("tw-connect")),
            "kafka_broker_service_names": v(json!(["tw-broker-0", "tw-broker-1"])),
            "kafka_controller_service_names": v(json!(["tw-controller-0"])),
        })
        .to_string(),
    )
    .unwrap();
    // The sink part comes from the real sink binary with a real source on the local stack.
    let stack = tumbleweed_tests::stack();
    let id = tumbleweed_tests::unique_suffix();
    let db = format!("status_{id}");
    let source = format!("st_{id}");
    let pg = stack.create_database(&db).await.unwrap();
    pg.batch_execute("CREATE TABLE public.orders (id int PRIMARY KEY)")
        .await
        .unwrap();
    let sink =
        tumbleweed_tests::sink::SinkProcess::start(sink_binary().to_str().unwrap(), stack, &[])
            .await
            .unwrap();
    let r = sink
        .admin(reqwest::Method::POST, "/v1/sources")
        .json(
            &json!({"name": source, "host": stack.pg_host, "port": stack.pg_port,
                      "database": db, "user": "postgres", "password": "x",
                      "tables": ["public.orders"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());

    let o = run(tumbleweed(Some(&moto.url))
        .args(["status", "--output", "json", "--tf-outputs"])
        .arg(&outputs)
        .args(["--sink-url", &sink.base])
        .env(
            "TUMBLEWEED_ADMIN_TOKEN",
            tumbleweed_tests::sink::ADMIN_TOKEN,
        ));
    let rep: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(rep["cluster"], "tw-cluster");
    let svcs = rep["services"].as_array().unwrap();
    assert_eq!(svcs.len(), 5);
    assert_eq!(svcs[0]["name"], "tw-sink");
    assert_eq!(svcs[0]["role"], "sink");
    assert_eq!(svcs[0]["desired"], 2);
    assert_eq!(svcs[0]["running"], running);
    assert_eq!(svcs[0]["pending"], pending);
    assert_eq!(svcs[2]["role"], "kafka-broker");
    assert_eq!(svcs[4]["role"], "kafka-controller");
    assert_eq!(svcs[4]["desired"], 1);
    let ours = rep["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == source.as_str())
        .unwrap_or_else(|| panic!("source {source} in {rep}"));
    assert_eq!(ours["connector_state"], "RUNNING");
    let slot = format!("tw_local_{source}");
    assert!(
        rep["slots"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["slot"] == slot.as_str() && s["status"] == "ok"),
        "slot {slot} in {rep}"
    );
    // Fewer tasks running than desired: not healthy, exit 1.
    assert_eq!(rep["healthy"], false);
    assert_eq!(o.status.code(), Some(1));

    // The table form names every service.
    let o = run(tumbleweed(Some(&moto.url))
        .args(["status", "--tf-outputs"])
        .arg(&outputs));
    let out = stdout(&o);
    for (name, _) in services {
        assert!(out.contains(name), "{out}");
    }
    assert!(out.contains("desired"));

    let r = sink
        .admin(reqwest::Method::DELETE, &format!("/v1/sources/{source}"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
}

async fn rds_instance(rds: &aws_sdk_rds::Client, group: &str, value: &str, instance: &str) {
    rds.create_db_parameter_group()
        .db_parameter_group_name(group)
        .db_parameter_group_family("postgres15")
        .description("tumbleweed test")
        .send()
        .await
        .unwrap();
    rds.modify_db_parameter_group()
        .db_parameter_group_name(group)
        .parameters(
            aws_sdk_rds::types::Parameter::builder()
                .parameter_name("rds.logical_replication")
                .parameter_value(value)
                .apply_method(aws_sdk_rds::types::ApplyMethod::PendingReboot)
                .build(),
        )
        .send()
        .await
        .unwrap();
    rds.create_db_instance()
        .db_instance_identifier(instance)
        .engine("postgres")
        .db_instance_class("db.t3.micro")
        .allocated_storage(20)
        .master_username("postgres")
        .master_user_password("password123")
        .db_parameter_group_name(group)
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn rds_parameter_check_both_ways() {
    let moto = Moto::start();
    let rds = aws_sdk_rds::Client::new(&moto.sdk_config().await);
    rds_instance(&rds, "tw-logical", "1", "db-ready").await;
    rds_instance(&rds, "tw-plain", "0", "db-notready").await;

    let ready = gather_rds(&rds, "db-ready").await.unwrap();
    assert_eq!(ready.parameter_group, "tw-logical");
    assert_eq!(ready.logical_replication.as_deref(), Some("1"));
    let checks = judge_rds(&ready);
    // moto reports the group as in-sync (it has no reboot cycle).
    assert!(checks.iter().all(|c| c.ok), "{checks:?}");

    let not = gather_rds(&rds, "db-notready").await.unwrap();
    let checks = judge_rds(&not);
    assert!(!checks[0].ok);
    assert_eq!(
        checks[0].fix.as_deref(),
        Some("set rds.logical_replication=1 in parameter group tw-plain and reboot instance db-notready")
    );

    // A pending reboot (which moto never reports by itself) is judged not ready.
    let pending = tumbleweed_helper::check_source::RdsFacts {
        apply_status: "pending-reboot".into(),
        ..ready
    };
    let checks = judge_rds(&pending);
    assert!(!checks[1].ok);
    assert!(checks[1]
        .fix
        .as_deref()
        .unwrap()
        .contains("reboot instance db-ready"));

    let err = gather_rds(&rds, "db-missing").await.unwrap_err();
    assert!(format!("{err:#}").contains("db-missing"));
}
