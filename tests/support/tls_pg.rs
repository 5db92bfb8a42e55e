//! A throwaway PostgreSQL 15 cluster that only accepts TLS, with a certificate chain made by
//! the test: a CA, a server certificate for `localhost` only (no IP address), and a second,
//! unrelated CA. It exists to test `sslmode` verify-ca and verify-full against a real server.
//!
//! Why a cluster of its own: the shared stack's PostgreSQL has no TLS, and TLS settings need a
//! restart. Like RDS with `rds.force_ssl = 1`, `pg_hba.conf` only has `hostssl` lines for TCP,
//! so the sink and Debezium cannot fall back to plaintext; the test itself connects over the
//! Unix socket. `wal_level = logical`, so a Debezium connector can stream from it. The files
//! are readable by everyone except the key (0600, owned by `postgres`), so the Kafka Connect
//! workers on this machine read the CA at the same path as the sink. Dropping the value stops
//! the cluster and removes its directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

pub struct TlsPostgres {
    pub dir: PathBuf,
    pub port: u16,
    /// The CA that signed the server certificate (PEM).
    pub ca_path: PathBuf,
    /// A CA that signed nothing the server has (PEM).
    pub other_ca_path: PathBuf,
}

/// `program` run as the `postgres` user when the tests run as root (initdb and pg_ctl refuse
/// root), or as it is otherwise. Shared by the throwaway clusters of the tests.
pub fn as_postgres(program: &str) -> Command {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", program]);
        c
    } else {
        Command::new(program)
    }
}

/// Runs `c`, failing with its stderr and `what` it was.
pub fn run(mut c: Command, what: &str) -> Result<()> {
    let out = c
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!("{what} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

fn ca_params(name: &str) -> Result<rcgen::CertificateParams> {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new())?;
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    p.distinguished_name
        .push(rcgen::DnType::CommonName, name.to_string());
    Ok(p)
}

impl TlsPostgres {
    /// initdb, certificates, start; blocking (call from `spawn_blocking` in async tests).
    pub fn start() -> Result<Self> {
        anyhow::ensure!(
            Path::new(PG_BIN).join("initdb").exists(),
            "{PG_BIN}/initdb is missing: install postgresql-15 (scripts/stack installs it)"
        );
        let dir = std::env::temp_dir().join(format!("tw_tlspg_{}", crate::unique_suffix()));
        std::fs::create_dir_all(dir.join("data"))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let cluster = Self {
            ca_path: dir.join("ca.pem"),
            other_ca_path: dir.join("other-ca.pem"),
            dir,
            port,
        };

        let ca = rcgen::CertifiedIssuer::self_signed(
            ca_params("Tumbleweed test CA")?,
            rcgen::KeyPair::generate()?,
        )?;
        let other = rcgen::CertifiedIssuer::self_signed(
            ca_params("Tumbleweed unrelated CA")?,
            rcgen::KeyPair::generate()?,
        )?;
        let key = rcgen::KeyPair::generate()?;
        let mut leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])?;
        leaf.distinguished_name
            .push(rcgen::DnType::CommonName, "localhost");
        let leaf = leaf.signed_by(&key, &ca)?;
        std::fs::write(&cluster.ca_path, ca.pem())?;
        std::fs::write(&cluster.other_ca_path, other.pem())?;
        let tls_dir = cluster.dir.join("tls");
        std::fs::create_dir_all(&tls_dir)?;
        std::fs::write(tls_dir.join("server.crt"), leaf.pem())?;
        std::fs::write(tls_dir.join("server.key"), key.serialize_pem())?;

        let mut chown = Command::new("chown");
        chown.args(["-R", "postgres:postgres"]).arg(&cluster.dir);
        run(chown, "chown to postgres (tests run as root)")?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&cluster.dir, std::fs::Permissions::from_mode(0o755))?;
        std::fs::set_permissions(
            tls_dir.join("server.key"),
            std::fs::Permissions::from_mode(0o600),
        )?;

        let data = cluster.dir.join("data");
        let mut initdb = as_postgres(&format!("{PG_BIN}/initdb"));
        initdb.arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--no-locale",
        ]);
        run(initdb, "initdb")?;
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nlocal replication all trust\n\
             hostssl all all 127.0.0.1/32 trust\nhostssl replication all 127.0.0.1/32 trust\n",
        )?;
        let mut ctl = as_postgres(&format!("{PG_BIN}/pg_ctl"));
        ctl.arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(cluster.dir.join("log"))
            .arg("-o")
            .arg(format!(
                "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={dir} \
                 -c wal_level=logical -c max_replication_slots=10 -c max_wal_senders=10 \
                 -c fsync=off -c ssl=on -c ssl_cert_file={dir}/tls/server.crt \
                 -c ssl_key_file={dir}/tls/server.key",
                dir = cluster.dir.display()
            ))
            .args(["-w", "-t", "60", "start"]);
        run(ctl, "pg_ctl start")?;
        Ok(cluster)
    }

    /// A superuser connection over the Unix socket (no TLS needed there).
    pub async fn client(&self) -> Result<tokio_postgres::Client> {
        let mut cfg = tokio_postgres::Config::new();
        cfg.host_path(&self.dir)
            .port(self.port)
            .user("postgres")
            .dbname("postgres");
        let (client, conn) = cfg
            .connect(tokio_postgres::NoTls)
            .await
            .context("connecting to the TLS cluster over its Unix socket")?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(client)
    }

    /// The server log, for assertion messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        let mut ctl = as_postgres(&format!("{PG_BIN}/pg_ctl"));
        ctl.arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "fast", "-w", "stop"]);
        let _ = run(ctl, "pg_ctl stop");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
