//! `tumbleweed check-source` against real PostgreSQL 15 servers started by the test.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{free_port, run, stdout, tumbleweed, wait_until, Moto};
use serde_json::Value;

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A throwaway cluster; stopped (and its directory removed) on drop.
struct Pg {
    dir: tempfile::TempDir,
    port: u16,
}

fn as_postgres(args: &[&str]) -> Command {
    let mut c = Command::new("runuser");
    c.args(["-u", "postgres", "--"]).args(args);
    c
}

impl Pg {
    fn start(wal_level: &str) -> Pg {
        let initdb = Path::new(PG_BIN).join("initdb");
        assert!(
            initdb.exists(),
            "{} missing: run `bash {}` (PostgreSQL 15)",
            initdb.display(),
            common::INSTALL
        );
        let dir = tempfile::Builder::new()
            .prefix("tw-pg-")
            .tempdir_in("/tmp")
            .unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let st = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(st.success(), "chown to postgres failed (tests run as root)");
        let d = data.to_str().unwrap();
        let out = as_postgres(&[
            initdb.to_str().unwrap(),
            "-D",
            d,
            "-U",
            "postgres",
            "--auth=trust",
        ])
        .output()
        .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let opts = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={d} -c wal_level={wal_level} -c max_wal_senders=2 -c max_replication_slots=2"
        );
        let log = dir.path().join("log");
        let out = as_postgres(&[
            &format!("{PG_BIN}/pg_ctl"),
            "-D",
            d,
            "-o",
            &opts,
            "-l",
            log.to_str().unwrap(),
            "-w",
            "start",
        ])
        .output()
        .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pg = Pg { dir, port };
        wait_until("postgres", Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn sql(&self, sql: &str) {
        let out = as_postgres(&[
            &format!("{PG_BIN}/psql"),
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
        .output()
        .unwrap();
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn check(&self, user: &str, extra: &[&str], endpoint: Option<&str>) -> (Option<i32>, String) {
        let o = run(tumbleweed(endpoint)
            .args([
                "check-source",
                "--host",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
            ])
            .args([
                "--database",
                "postgres",
                "--user",
                user,
                "--password-env",
                "PGPASS_TEST",
            ])
            .env("PGPASS_TEST", "unused-with-trust")
            .args(extra));
        (o.status.code(), stdout(&o))
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let _ = as_postgres(&[
            &format!("{PG_BIN}/pg_ctl"),
            "-D",
            self.data().to_str().unwrap(),
            "-m",
            "immediate",
            "stop",
        ])
        .output();
    }
}

#[test]
fn logical_cluster_ready_for_replication_role_but_not_for_plain_role() {
    let pg = Pg::start("logical");
    pg.sql("CREATE ROLE debezium LOGIN REPLICATION; CREATE ROLE app LOGIN;");

    let (code, out) = pg.check("debezium", &[], None);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("ready for CDC"));

    let (code, out) = pg.check("app", &["--output", "json"], None);
    assert_eq!(code, Some(1));
    let rep: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rep["ready"], false);
    let failed: Vec<&Value> = rep["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .collect();
    assert_eq!(failed.len(), 1, "{out}");
    assert_eq!(failed[0]["name"], "replication privilege");
    assert_eq!(
        failed[0]["fix"],
        "run `ALTER ROLE \"app\" WITH REPLICATION;` as a superuser"
    );

    // Use up both replication slots: the slot check fails with the exact fix.
    pg.sql("SELECT pg_create_logical_replication_slot('s1', 'pgoutput'); SELECT pg_create_logical_replication_slot('s2', 'pgoutput');");
    let (code, out) = pg.check("debezium", &[], None);
    assert_eq!(code, Some(1));
    assert!(
        out.contains("2 of max_replication_slots = 2 in use: no free slot"),
        "{out}"
    );
    assert!(
        out.contains("ALTER SYSTEM SET max_replication_slots = 4;"),
        "{out}"
    );
}

#[test]
fn replica_cluster_gets_the_wal_level_fix() {
    let pg = Pg::start("replica");
    let (code, out) = pg.check("postgres", &[], None);
    assert_eq!(code, Some(1));
    assert!(out.contains("FAIL wal_level: wal_level = replica"), "{out}");
    assert!(
        out.contains("fix: run `ALTER SYSTEM SET wal_level = logical;` and restart PostgreSQL"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rds_instance_with_logical_replication_off_gets_the_parameter_group_fix() {
    let pg = Pg::start("logical");
    let moto = Moto::start();
    let rds = aws_sdk_rds::Client::new(&moto.sdk_config().await);
    rds.create_db_parameter_group()
        .db_parameter_group_name("tw-pg15")
        .db_parameter_group_family("postgres15")
        .description("test")
        .send()
        .await
        .unwrap();
    rds.create_db_instance()
        .db_instance_identifier("orders-db")
        .engine("postgres")
        .db_instance_class("db.t3.micro")
        .allocated_storage(20)
        .master_username("postgres")
        .master_user_password("password123")
        .db_parameter_group_name("tw-pg15")
        .send()
        .await
        .unwrap();
    let url = moto.url.clone();
    let (code, out) = tokio::task::spawn_blocking(move || {
        pg.check("postgres", &["--db-instance", "orders-db"], Some(&url))
    })
    .await
    .unwrap();
    assert_eq!(code, Some(1));
    assert!(
        out.contains("fix: set rds.logical_replication=1 in parameter group tw-pg15 and reboot instance orders-db"),
        "{out}"
    );
}

#[test]
fn unreachable_database_is_one_line_error() {
    let port = free_port();
    let o = run(tumbleweed(None).args([
        "check-source",
        "--host",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--user",
        "x",
        "--connect-timeout",
        "2",
    ]));
    assert_eq!(o.status.code(), Some(1));
    let err = common::stderr(&o);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "connecting to postgres://x@127.0.0.1:{port}/postgres"
        )),
        "{err}"
    );
}

/// `--sslmode verify-full` with the sink's TLS code: the right CA and name pass, a wrong name
/// or CA is refused with the sink's explanation, and a verifying mode without a bundle is a
/// usage error. The cluster only accepts TLS, with a server certificate for `localhost`.
#[test]
fn verified_tls_passes_with_the_right_ca_and_name_and_explains_refusals() {
    let pg = tumbleweed_tests::tls_pg::TlsPostgres::start().unwrap();
    let port = pg.port.to_string();
    let ca = pg.ca_path.to_str().unwrap().to_string();
    let other = pg.other_ca_path.to_str().unwrap().to_string();
    let check = |host: &str, tls: &[&str]| {
        run(tumbleweed(None)
            .args(["check-source", "--host", host, "--port", &port])
            .args(["--user", "postgres", "--connect-timeout", "5"])
            .args(tls))
    };

    let o = check(
        "localhost",
        &["--sslmode", "verify-full", "--sslrootcert", &ca],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        stdout(&o),
        common::stderr(&o)
    );
    assert!(stdout(&o).contains("is ready for CDC"), "{}", stdout(&o));

    let o = check(
        "127.0.0.1",
        &["--sslmode", "verify-full", "--sslrootcert", &ca],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = common::stderr(&o);
    assert!(
        err.contains("is not valid for 127.0.0.1 (it names localhost): connect with a name in the certificate, or use sslmode verify-ca"),
        "{err}"
    );

    let o = check(
        "localhost",
        &["--sslmode", "verify-ca", "--sslrootcert", &other],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = common::stderr(&o);
    assert!(
        err.contains(&format!("is not signed by a CA in sslrootcert {other}")),
        "{err}"
    );

    // Plaintext is refused by this server (hostssl only): without TLS there is no entry.
    let o = check("localhost", &["--sslmode", "disable"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        common::stderr(&o).contains("no encryption"),
        "{}",
        common::stderr(&o)
    );

    let o = check("localhost", &["--sslmode", "verify-full"]);
    assert_eq!(o.status.code(), Some(2), "a usage error");
    assert!(
        common::stderr(&o).contains("needs sslrootcert"),
        "{}",
        common::stderr(&o)
    );
}
