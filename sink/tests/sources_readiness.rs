//! Readiness failures: each gives its own clear message, names the field at fault, and leaves
//! nothing behind (no connector, slot, publication or heartbeat table). Invalid names are
//! refused before anything is touched. Password, TLS and `wal_level` failures need a server that
//! checks passwords, only accepts TLS (like RDS with `rds.force_ssl = 1`) and is not logical: a
//! throwaway cluster (scram-sha-256, hostssl only, wal_level=replica) is started by the test and
//! stopped when it ends.

mod common_sources;

use std::path::PathBuf;
use std::process::Command;

use anyhow::Result;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tumbleweed_tests::{stack, unique_suffix};

use common_sources::{assert_nothing_left, serve, source_body};

fn expect(status: StatusCode, body: &Value, want: StatusCode, field: Option<&str>, text: &str) {
    println!("{status} {body}");
    assert_eq!(status, want, "{body}");
    assert_eq!(body["field"].as_str(), field, "field of {body}");
    let msg = body["error"].as_str().unwrap_or_default();
    assert!(msg.contains(text), "error {msg:?} should mention {text:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_failures_are_precise_and_leave_nothing_behind() -> Result<()> {
    let stack = stack();
    let api = serve(stack).await;
    let id = unique_suffix();
    let name = format!("r_{id}");
    let db = format!("ready_{id}");
    let pg = stack.create_database(&db).await?;
    pg.batch_execute(&format!(
        "CREATE TABLE public.items (id int PRIMARY KEY, name text);
         CREATE TABLE public.nokey (id int, name text);
         CREATE ROLE norepl_{id} LOGIN;"
    ))
    .await?;

    // Invalid names: 400 before anything is touched.
    for bad in ["it's", "two words", "UPPER", ""] {
        let (s, b) = api
            .post(
                "/v1/sources",
                &source_body(stack, bad, &db, &["public.items"], 60),
            )
            .await?;
        expect(
            s,
            &b,
            StatusCode::BAD_REQUEST,
            Some("name"),
            "invalid source name",
        );
    }
    let (s, b) = api
        .post(
            "/v1/sources",
            &source_body(stack, &name, &db, &["items"], 60),
        )
        .await?;
    expect(
        s,
        &b,
        StatusCode::BAD_REQUEST,
        Some("tables"),
        "schema.table",
    );
    let (s, b) = api
        .post(
            "/v1/sources",
            &source_body(stack, &name, &db, &["public.it\"ems"], 60),
        )
        .await?;
    expect(
        s,
        &b,
        StatusCode::BAD_REQUEST,
        Some("tables"),
        "not a plain identifier",
    );
    let (s, b) = api.get("/v1/sources/bad%20name").await?;
    expect(
        s,
        &b,
        StatusCode::BAD_REQUEST,
        Some("name"),
        "invalid source name",
    );

    // Database checks: 422 with the field at fault.
    let (s, b) = api
        .post(
            "/v1/sources",
            &source_body(stack, &name, &db, &["public.items", "public.missing"], 60),
        )
        .await?;
    expect(
        s,
        &b,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("tables"),
        "public.missing does not exist",
    );
    assert_nothing_left(stack, &pg, &name).await?;

    let (s, b) = api
        .post(
            "/v1/sources",
            &source_body(stack, &name, &db, &["public.nokey"], 60),
        )
        .await?;
    expect(
        s,
        &b,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("tables"),
        "has no primary key",
    );
    assert_nothing_left(stack, &pg, &name).await?;

    let mut body = source_body(stack, &name, &db, &["public.items"], 60);
    body["user"] = json!(format!("norepl_{id}"));
    let (s, b) = api.post("/v1/sources", &body).await?;
    expect(
        s,
        &b,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("user"),
        "may not replicate",
    );
    assert_nothing_left(stack, &pg, &name).await?;

    let mut body = source_body(stack, &name, &format!("nodb_{id}"), &["public.items"], 60);
    let (s, b) = api.post("/v1/sources", &body).await?;
    expect(
        s,
        &b,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("database"),
        "does not exist",
    );
    body["database"] = json!(db);
    body["port"] = json!(1);
    let (s, b) = api.post("/v1/sources", &body).await?;
    expect(
        s,
        &b,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("host"),
        "cannot reach PostgreSQL at 127.0.0.1:1",
    );
    assert_nothing_left(stack, &pg, &name).await?;

    body["port"] = json!(stack.pg_port);
    body["sslmode"] = json!("require");
    let (s, b) = api.post("/v1/sources", &body).await?;
    expect(
        s,
        &b,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("sslmode"),
        "TLS",
    );

    let (s, b) = api
        .post("/v1/sources", &json!({"name": name, "host": "127.0.0.1", "database": db, "user": "postgres", "tables": ["public.items"], "mode": "sideways"}))
        .await?;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");

    // A slot that already exists under the source's name: 409, and the slot is not touched.
    let slot = format!("tw_local_{name}");
    pg.execute(
        "SELECT pg_create_logical_replication_slot($1, 'pgoutput')",
        &[&slot],
    )
    .await?;
    let (s, b) = api
        .post(
            "/v1/sources",
            &source_body(stack, &name, &db, &["public.items"], 60),
        )
        .await?;
    expect(s, &b, StatusCode::CONFLICT, Some("name"), "already exists");
    pg.execute("SELECT pg_drop_replication_slot($1)", &[&slot])
        .await?;
    // Same for a publication.
    pg.batch_execute(&format!("CREATE PUBLICATION {slot} FOR TABLE public.items"))
        .await?;
    let (s, b) = api
        .post(
            "/v1/sources",
            &source_body(stack, &name, &db, &["public.items"], 60),
        )
        .await?;
    expect(s, &b, StatusCode::CONFLICT, Some("name"), "publication");
    pg.batch_execute(&format!("DROP PUBLICATION {slot}"))
        .await?;
    assert_nothing_left(stack, &pg, &name).await?;
    Ok(())
}

/// A throwaway PostgreSQL 15 cluster with password authentication and `wal_level=replica`.
struct ScramCluster {
    dir: PathBuf,
    port: u16,
}

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

use tumbleweed_tests::tls_pg::{as_postgres, run};

impl ScramCluster {
    fn start(password: &str) -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("tw_scram_{}", unique_suffix()));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("pw"), password)?;
        let root = Command::new("id").arg("-u").output()?.stdout == b"0\n";
        if root {
            run(
                {
                    let mut c = Command::new("chown");
                    c.args(["-R", "postgres:postgres"]).arg(&dir);
                    c
                },
                "chown",
            )?;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let cluster = Self { dir, port };
        let data = cluster.dir.join("data");
        let mut initdb = as_postgres(&format!("{PG_BIN}/initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth=scram-sha-256",
                "--no-sync",
                "-E",
                "UTF8",
                "--no-locale",
            ])
            .arg(format!("--pwfile={}", cluster.dir.join("pw").display()));
        run(initdb, "initdb")?;
        // TLS only, like RDS with rds.force_ssl = 1 (a self-signed certificate).
        let mut req = as_postgres("openssl");
        req.args([
            "req",
            "-new",
            "-x509",
            "-days",
            "2",
            "-nodes",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(data.join("server.key"))
        .arg("-out")
        .arg(data.join("server.crt"));
        run(req, "openssl req")?;
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all scram-sha-256\nhostssl all all 127.0.0.1/32 scram-sha-256\n",
        )?;
        let mut ctl = as_postgres(&format!("{PG_BIN}/pg_ctl"));
        ctl.arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(cluster.dir.join("log"))
            .arg("-o")
            .arg(format!(
                "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c wal_level=replica -c fsync=off -c ssl=on",
                cluster.dir.display()
            ))
            .args(["-w", "-t", "60", "start"]);
        run(ctl, "pg_ctl start")?;
        Ok(cluster)
    }
}

impl Drop for ScramCluster {
    fn drop(&mut self) {
        let mut ctl = as_postgres(&format!("{PG_BIN}/pg_ctl"));
        ctl.arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"]);
        let _ = run(ctl, "pg_ctl stop");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_password_and_wal_level_are_reported() -> Result<()> {
    let stack = stack();
    let api = serve(stack).await;
    let cluster = tokio::task::spawn_blocking(|| ScramCluster::start("right-password")).await??;
    let name = format!("p_{}", unique_suffix());
    let body = |password: &str| {
        json!({
            "name": name, "host": "127.0.0.1", "port": cluster.port, "database": "postgres",
            "user": "postgres", "password": password, "tables": ["public.items"],
        })
    };
    let mut plain = body("right-password");
    plain["sslmode"] = json!("disable");
    let (s, b) = api.post("/v1/sources", &plain).await?;
    expect(
        s,
        &b,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("sslmode"),
        "requires TLS",
    );
    let mut tls = body("right-password");
    tls["sslmode"] = json!("require");
    let (s, b) = api.post("/v1/sources", &tls).await?;
    expect(
        s,
        &b,
        StatusCode::UNPROCESSABLE_ENTITY,
        None,
        "wal_level is 'replica'",
    );
    // The default (prefer) negotiates TLS too.
    let (s, b) = api.post("/v1/sources", &body("wrong-password")).await?;
    expect(
        s,
        &b,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("password"),
        "password authentication failed",
    );
    let (s, b) = api.post("/v1/sources", &body("")).await?;
    expect(
        s,
        &b,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("password"),
        "password",
    );
    let (s, b) = api.post("/v1/sources", &body("right-password")).await?;
    expect(
        s,
        &b,
        StatusCode::UNPROCESSABLE_ENTITY,
        None,
        "wal_level is 'replica'",
    );
    assert!(!stack
        .connect()
        .list()
        .await?
        .contains(&format!("tumbleweed-{name}")));
    drop(cluster);
    Ok(())
}
