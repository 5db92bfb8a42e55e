//! `tumbleweed kafka roll` against moto's ECS and the real sink on the local stack.
//!
//! moto runs no tasks: a service's running count stays 0 and its deployment IN_PROGRESS, so
//! against it a roll can never see steady state. This test checks what the real parts can
//! show — the plan from the terraform outputs and ECS, the cluster health read from the real
//! sink, the update of the first node only, and the stop with a message naming the node and
//! what ECS showed. The ordering and the waits between nodes (steady state, then the cluster
//! in sync) are unit tested with fakes in `src/kafka_roll.rs`.

mod common;

use aws_sdk_ecs::types::{
    AwsVpcConfiguration, Compatibility, ContainerDefinition, NetworkConfiguration, NetworkMode,
};
use common::{run, sink_binary, stderr, stdout, tumbleweed, Moto};
use serde_json::{json, Value};
use tumbleweed_tests::sink::{SinkProcess, ADMIN_TOKEN};
use tumbleweed_tests::stack;

async fn register(ecs: &aws_sdk_ecs::Client, family: &str, image: &str) -> String {
    ecs.register_task_definition()
        .family(family)
        .requires_compatibilities(Compatibility::Fargate)
        .network_mode(NetworkMode::Awsvpc)
        .cpu("512")
        .memory("1024")
        .container_definitions(
            ContainerDefinition::builder()
                .name("kafka")
                .image(image)
                .memory(1024)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .task_definition()
        .unwrap()
        .task_definition_arn()
        .unwrap()
        .to_string()
}

async fn service_revision(ecs: &aws_sdk_ecs::Client, service: &str) -> String {
    ecs.describe_services()
        .cluster("tw")
        .services(service)
        .send()
        .await
        .unwrap()
        .services()[0]
        .task_definition()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roll_plans_from_outputs_updates_one_node_and_stops_where_ecs_is_not_steady() {
    let stack = stack();
    let sink = SinkProcess::start(sink_binary().to_str().unwrap(), stack, &[])
        .await
        .unwrap();
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let ecs = aws_sdk_ecs::Client::new(&config);
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.0.0.0/16")
        .send()
        .await
        .unwrap()
        .vpc()
        .unwrap()
        .vpc_id()
        .unwrap()
        .to_string();
    let subnet = ec2
        .create_subnet()
        .vpc_id(&vpc)
        .cidr_block("10.0.0.0/24")
        .send()
        .await
        .unwrap()
        .subnet()
        .unwrap()
        .subnet_id()
        .unwrap()
        .to_string();
    let sg = ec2
        .create_security_group()
        .group_name("kafka")
        .description("kafka nodes")
        .vpc_id(&vpc)
        .send()
        .await
        .unwrap()
        .group_id()
        .unwrap()
        .to_string();
    ecs.create_cluster()
        .cluster_name("tw")
        .send()
        .await
        .unwrap();

    // As many broker services as the stack has brokers, so the real sink's health (every
    // broker present, in sync) agrees with the outputs.
    let brokers = if stack.kafka_mode == "single" { 1 } else { 3 };
    let mut keys = vec!["controller-1".to_string()];
    keys.extend((1..=brokers).map(|i| format!("broker-{i}")));
    let mut current = serde_json::Map::new();
    let mut latest = serde_json::Map::new();
    for key in &keys {
        let family = format!("tw-kafka-{key}");
        let v1 = register(&ecs, &family, "apache/kafka:4.0.0").await;
        ecs.create_service()
            .cluster("tw")
            .service_name(&family)
            .task_definition(&v1)
            .desired_count(1)
            .launch_type(aws_sdk_ecs::types::LaunchType::Fargate)
            .network_configuration(
                NetworkConfiguration::builder()
                    .awsvpc_configuration(
                        AwsVpcConfiguration::builder()
                            .subnets(&subnet)
                            .security_groups(&sg)
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let v2 = register(&ecs, &family, "apache/kafka:4.1.0").await;
        current.insert(key.clone(), json!(v1));
        latest.insert(key.clone(), json!(v2));
    }
    let v = |x: Value| json!({"value": x, "type": "string", "sensitive": false});
    let dir = tempfile::tempdir().unwrap();
    let outputs = dir.path().join("outputs.json");
    std::fs::write(
        &outputs,
        json!({
            "cluster_name": v(json!("tw")),
            // Consumer routes only there: the health check must use admin_url.
            "public_url": v(json!("http://127.0.0.1:9/")),
            "admin_url": v(json!(sink.base)),
            "kafka_controller_service_names": v(json!(["tw-kafka-controller-1"])),
            "kafka_broker_service_names":
                v(json!(keys[1..].iter().map(|k| format!("tw-kafka-{k}")).collect::<Vec<_>>())),
            "kafka_node_task_definition_arns": v(Value::Object(latest.clone())),
        })
        .to_string(),
    )
    .unwrap();
    let roll = |extra: &[&str]| {
        let mut c = tumbleweed(Some(&moto.url));
        c.args(["kafka", "roll", "--tf-outputs"])
            .arg(&outputs)
            .args(extra);
        c
    };

    // The plan: every node, controllers first, from its running revision to the latest.
    let o = run(&mut roll(&["--dry-run", "--output", "json"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let plan: Vec<Value> = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        plan.iter().map(|p| p["node"].clone()).collect::<Vec<_>>(),
        keys.iter().map(|k| json!(k)).collect::<Vec<_>>()
    );
    for p in &plan {
        let key = p["node"].as_str().unwrap();
        assert_eq!(p["from"], current[key]);
        assert_eq!(p["to"], latest[key]);
        assert_eq!(p["change"], true);
    }
    assert_eq!(
        service_revision(&ecs, "tw-kafka-controller-1").await,
        current["controller-1"],
        "a dry run changes nothing"
    );

    // Without the admin token the roll cannot read the cluster: a usage error, nothing moved.
    let o = run(&mut roll(&[]));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("$TUMBLEWEED_ADMIN_TOKEN"),
        "{}",
        stderr(&o)
    );

    // The roll: the cluster is in sync (read from the real sink), controller-1 is moved, ECS
    // (moto) never reports it steady, so the roll stops there and no broker is touched.
    let o = run(roll(&["--node-timeout-secs", "3", "--poll-ms", "200"])
        .env("TUMBLEWEED_ADMIN_TOKEN", ADMIN_TOKEN));
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(
        err.contains("the roll stopped at controller-1")
            && err.contains("did not reach ECS steady state")
            && err.contains("0 running of 1 desired"),
        "{err}"
    );
    assert!(
        stdout(&o).contains("controller-1: moving tw-kafka-controller-1"),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        service_revision(&ecs, "tw-kafka-controller-1").await,
        latest["controller-1"]
    );
    for key in &keys[1..] {
        assert_eq!(
            service_revision(&ecs, &format!("tw-kafka-{key}")).await,
            current[key.as_str()],
            "{key} is untouched"
        );
    }

    // A sink that cannot be reached stops the roll before any node.
    let unreachable = format!("http://127.0.0.1:{}", common::free_port());
    let o = run(roll(&["--sink-url", &unreachable]).env("TUMBLEWEED_ADMIN_TOKEN", ADMIN_TOKEN));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("reading the cluster's health before the roll"),
        "{}",
        stderr(&o)
    );
}
