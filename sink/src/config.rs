//! Configuration of the sink: every setting is a command-line flag with an environment
//! variable (`TUMBLEWEED_*`) of the same meaning, so the binary runs the same way on a laptop
//! (flags) and in ECS (environment, secrets injected by the task definition).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::sources::tls::{RootCert, SslMode};

/// What happens to an SSE stream that falls too far behind the head of its topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SlowConsumerPolicy {
    /// End the stream with a final comment; the client resumes later from its cursor.
    Disconnect,
    /// Keep the stream open and serve it from the shared replay of older history.
    CatchUp,
}

#[derive(Debug, Clone, Parser)]
#[command(
    name = "tumbleweed-sink",
    version,
    about = "Change events from Kafka to consumer services over Server-Sent Events"
)]
pub struct Config {
    /// Address the HTTP server (API, SSE, UI) listens on.
    #[arg(long, env = "TUMBLEWEED_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Kafka bootstrap servers (`host:port[,host:port]`).
    #[arg(
        long,
        env = "TUMBLEWEED_KAFKA_BOOTSTRAP",
        default_value = "127.0.0.1:19092"
    )]
    pub kafka_bootstrap: String,

    /// How long the sink keeps trying to reach Kafka and open its internal topics at start
    /// (a deployment starts its services together) before it exits with the last error.
    #[arg(
        long,
        env = "TUMBLEWEED_KAFKA_START_TIMEOUT_SECS",
        default_value_t = 300
    )]
    pub kafka_start_timeout_secs: u64,

    /// Base URL of the Kafka Connect REST API.
    #[arg(
        long,
        env = "TUMBLEWEED_CONNECT_URL",
        default_value = "http://127.0.0.1:18083"
    )]
    pub connect_url: String,

    /// Bearer token for the admin API and the UI (required).
    #[arg(long, env = "TUMBLEWEED_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: String,

    /// Token that may scrape `/metrics` (besides the admin token), for Prometheus.
    #[arg(long, env = "TUMBLEWEED_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// Comment keepalive interval on idle SSE streams, in seconds.
    #[arg(long, env = "TUMBLEWEED_SSE_KEEPALIVE_SECS", default_value_t = 15)]
    pub sse_keepalive_secs: u64,

    /// Reconnection delay suggested to SSE clients (`retry:` line), in milliseconds.
    #[arg(long, env = "TUMBLEWEED_SSE_RETRY_MS", default_value_t = 2000)]
    pub sse_retry_ms: u64,

    /// Recent events kept in memory per partition by the shared topic readers.
    #[arg(long, env = "TUMBLEWEED_BUFFER_EVENTS", default_value_t = 20_000)]
    pub buffer_events_per_partition: usize,

    /// Bytes of events kept in memory per topic by its shared reader (JSON plus bookkeeping),
    /// at most.
    #[arg(long, env = "TUMBLEWEED_BUFFER_BYTES_PER_TOPIC", default_value_t = 64 << 20)]
    pub buffer_bytes_per_topic: usize,

    /// Bytes of events kept in memory by all topic readers together, at most: each open topic
    /// gets an equal share (capped by the per-topic budget).
    #[arg(long, env = "TUMBLEWEED_BUFFER_BYTES", default_value_t = 512 << 20)]
    pub buffer_bytes: usize,

    /// A topic reader nobody has used for this many seconds is closed.
    #[arg(long, env = "TUMBLEWEED_FEED_IDLE_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub feed_idle_secs: u64,

    /// Pooled replay readers (Kafka consumers reading history older than the shared buffers,
    /// shared by every stream that replays it) that may exist at once; a read that needs one
    /// while all are busy waits for one. Their prefetch shares a quarter of `--buffer-bytes`,
    /// and the chunks they read are cached in another quarter.
    #[arg(long, env = "TUMBLEWEED_MAX_CATCHUP_READERS", default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub max_catchup_readers: u64,

    /// Resident memory this process should stay under, in bytes (e.g. 90 % of the
    /// container's memory). Above 85 % of it new streams are answered 503 with `Retry-After`
    /// and replay reads run one at a time, until memory is back under. Unset: no limit. Size
    /// `--buffer-bytes` at most a fifth of it.
    #[arg(long, env = "TUMBLEWEED_MEMORY_LIMIT", value_parser = clap::value_parser!(u64).range((64 << 20)..))]
    pub memory_limit: Option<u64>,

    /// CloudWatch namespace of the metrics written to stdout in Embedded Metric Format
    /// (shipped by the ECS log driver; see `emf.rs`). Unset: no EMF lines.
    #[arg(long, env = "TUMBLEWEED_EMF_NAMESPACE")]
    pub emf_namespace: Option<String>,

    /// Value of the `Deployment` dimension of the EMF metrics (the deployment's name prefix).
    #[arg(long, env = "TUMBLEWEED_EMF_DEPLOYMENT", default_value = "tumbleweed")]
    pub emf_deployment: String,

    /// Seconds between two rounds of EMF lines.
    #[arg(long, env = "TUMBLEWEED_EMF_INTERVAL_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub emf_interval_secs: u64,

    /// SSE streams this sink serves at once; more are answered 503 with `Retry-After`.
    #[arg(long, env = "TUMBLEWEED_MAX_STREAMS", default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_streams: u64,

    /// SSE streams one consumer may hold open at once; more are answered 429 with
    /// `Retry-After`.
    #[arg(long, env = "TUMBLEWEED_MAX_STREAMS_PER_CONSUMER", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_streams_per_consumer: u64,

    /// HTTP connections kept open at once; a connection over the limit gets one 503 with
    /// `Retry-After` and is closed.
    #[arg(long, env = "TUMBLEWEED_MAX_CONNECTIONS", default_value_t = 25_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: u64,

    /// Lag (events behind the head, summed over partitions) past which a stream is slow.
    #[arg(long, env = "TUMBLEWEED_MAX_LAG_EVENTS", default_value_t = 100_000)]
    pub max_lag_events: u64,

    /// What to do with a slow stream.
    #[arg(
        long,
        env = "TUMBLEWEED_SLOW_CONSUMER_POLICY",
        value_enum,
        default_value = "disconnect"
    )]
    pub slow_consumer_policy: SlowConsumerPolicy,

    /// Seconds a client may accept no bytes while the server has some to send before its
    /// connection is closed (an SSE client that stopped reading; it resumes with
    /// `Last-Event-ID`).
    #[arg(long, env = "TUMBLEWEED_WRITE_TIMEOUT_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub write_timeout_secs: u64,

    /// Most events written to a stream in one chunk (bounds memory per connection).
    #[arg(long, env = "TUMBLEWEED_MAX_CHUNK_EVENTS", default_value_t = 512)]
    pub max_chunk_events: usize,

    /// Bytes written to a stream in one chunk, about (bounds memory per connection: a stream
    /// holds the chunk it is writing and one handed to the HTTP server, whose write queue
    /// takes chunks while it holds less than 400 KB).
    #[arg(long, env = "TUMBLEWEED_MAX_CHUNK_BYTES", default_value_t = 128 << 10, value_parser = clap::value_parser!(u64).range(1024..=(64 << 20)))]
    pub max_chunk_bytes: u64,

    /// librdkafka `fetch.wait.max.ms` for the topic readers: how long the broker may hold a
    /// fetch while a partition has nothing new. Apache Kafka answers as soon as data arrives,
    /// so this bounds idle polling, not latency.
    #[arg(long, env = "TUMBLEWEED_FETCH_WAIT_MAX_MS", default_value_t = 100)]
    pub fetch_wait_max_ms: u64,

    /// Compacted topic holding consumer registrations (shared by all sink replicas).
    #[arg(
        long,
        env = "TUMBLEWEED_CONSUMERS_TOPIC",
        default_value = "_tumbleweed_consumers"
    )]
    pub consumers_topic: String,

    /// Compacted topic holding each consumer's acknowledged cursor (shared by all sink
    /// replicas; a cursor lives as long as its consumer, it never expires).
    #[arg(
        long,
        env = "TUMBLEWEED_CURSORS_TOPIC",
        default_value = "_tumbleweed_cursors"
    )]
    pub cursors_topic: String,

    /// Log topic of stream tickets (single-use credentials for EventSource; shared by all
    /// sink replicas, kept one hour).
    #[arg(
        long,
        env = "TUMBLEWEED_TICKETS_TOPIC",
        default_value = "_tumbleweed_tickets"
    )]
    pub tickets_topic: String,

    /// Log topic of the health history behind `GET /v1/stats` and the UI's charts: every
    /// replica writes a sample per interval and reads everyone's, so any replica answers for
    /// the whole deployment (kept a little longer than the window).
    #[arg(
        long,
        env = "TUMBLEWEED_STATS_TOPIC",
        default_value = "_tumbleweed_stats"
    )]
    pub stats_topic: String,

    /// This deployment's id, part of every replication slot and publication it creates
    /// (`tw_<id>_<source>`), so that deployments sharing a database never take each other's
    /// slots for orphans. 1 to 16 characters among a-z and 0-9 (no `_`, so the prefix is
    /// unambiguous); on AWS the Terraform sets it from the name prefix.
    #[arg(long, env = "TUMBLEWEED_DEPLOYMENT_ID", default_value = "local", value_parser = parse_deployment_id)]
    pub deployment_id: String,

    /// Seconds between two samples of the health history.
    #[arg(long, env = "TUMBLEWEED_STATS_INTERVAL_SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub stats_interval_secs: u64,

    /// Seconds of health history kept and shown (15 minutes by default).
    #[arg(long, env = "TUMBLEWEED_STATS_WINDOW_SECS", default_value_t = 900, value_parser = clap::value_parser!(u64).range(60..=86_400))]
    pub stats_window_secs: u64,

    /// Seconds a stream ticket stays valid (it opens one stream).
    #[arg(long, env = "TUMBLEWEED_TICKET_TTL_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub ticket_ttl_secs: u64,

    /// Accept a consumer token in `?token=` (off: URLs end up in access logs and browser
    /// history; browsers use `?ticket=`).
    #[arg(long, env = "TUMBLEWEED_ALLOW_QUERY_TOKEN", default_value_t = false, action = clap::ArgAction::Set)]
    pub allow_query_token: bool,

    /// Accept a source's database password in plain text (`password`). Off: Kafka Connect
    /// would keep it in its config topic and return it from its REST API, so sources name
    /// their password with `password_secret` instead. For local use only.
    #[arg(long, env = "TUMBLEWEED_ALLOW_PLAINTEXT_PASSWORD", default_value_t = false, action = clap::ArgAction::Set)]
    pub allow_plaintext_password: bool,

    /// The directory of the password files sources may name (`password_secret:
    /// file:/path`); unset, file references are refused. A file elsewhere could be any file
    /// the sink can read, sent as a password to the database the source names.
    #[arg(long, env = "TUMBLEWEED_SECRETS_DIR")]
    pub secrets_dir: Option<PathBuf>,

    /// Compacted topic holding the declared sources (shared by all sink replicas).
    #[arg(
        long,
        env = "TUMBLEWEED_SOURCES_TOPIC",
        default_value = "_tumbleweed_sources"
    )]
    pub sources_topic: String,

    /// Seconds between two passes of the reconciler, which puts Kafka Connect back in line
    /// with the declared sources.
    #[arg(long, env = "TUMBLEWEED_RECONCILE_INTERVAL_SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub reconcile_interval_secs: u64,

    /// Replication factor of the topics the sink and Debezium create (3 on a production
    /// cluster, 1 on the single local broker).
    #[arg(long, env = "TUMBLEWEED_TOPIC_REPLICATION_FACTOR", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub topic_replication_factor: u16,

    /// Directory with the operator UI's files, served at `/` (default: `ui/` under the
    /// working directory, else /usr/share/tumbleweed/ui as in the image).
    #[arg(long, env = "TUMBLEWEED_UI_DIR")]
    pub ui_dir: Option<PathBuf>,

    /// Retained WAL per replication slot above which the slot is reported as `warn`.
    #[arg(long, env = "TUMBLEWEED_WAL_WARN_BYTES", default_value_t = 1 << 30)]
    pub wal_warn_bytes: u64,

    /// Retained WAL per replication slot above which the slot is reported as `critical`.
    #[arg(long, env = "TUMBLEWEED_WAL_CRITICAL_BYTES", default_value_t = 10 << 30)]
    pub wal_critical_bytes: u64,

    /// How often the WAL guard measures the replication slots, in seconds.
    #[arg(long, env = "TUMBLEWEED_WAL_CHECK_SECS", default_value_t = 30)]
    pub wal_check_secs: u64,

    /// `sslmode` of a source whose creation request gives none: disable, prefer, require,
    /// verify-ca or verify-full (Terraform sets verify-full on AWS).
    #[arg(
        long,
        env = "TUMBLEWEED_SOURCE_DEFAULT_SSLMODE",
        default_value = "prefer"
    )]
    pub source_default_sslmode: SslMode,

    /// `sslrootcert` of a source whose request gives none, used when its sslmode verifies:
    /// `rds` (the Amazon RDS CA bundle, embedded in the sink) or an absolute path to a PEM CA
    /// bundle readable by the sink and by the Connect workers.
    #[arg(long, env = "TUMBLEWEED_SOURCE_DEFAULT_SSLROOTCERT")]
    pub source_default_sslrootcert: Option<String>,

    /// Where the Kafka Connect workers read the Amazon RDS CA bundle, which becomes
    /// `database.sslrootcert` of sources with `sslrootcert: rds`.
    #[arg(
        long,
        env = "TUMBLEWEED_CONNECT_RDS_CA_PATH",
        default_value = crate::sources::connect::DEFAULT_CONNECT_RDS_CA_PATH
    )]
    pub connect_rds_ca_path: String,
}

/// Checks `TUMBLEWEED_DEPLOYMENT_ID`.
fn parse_deployment_id(raw: &str) -> Result<String, String> {
    crate::sources::model::check_deployment_id(raw).map(|()| raw.to_string())
}

impl Config {
    pub fn write_timeout(&self) -> Duration {
        Duration::from_secs(self.write_timeout_secs)
    }

    pub fn keepalive(&self) -> Duration {
        Duration::from_secs(self.sse_keepalive_secs.max(1))
    }

    /// Checks relations between settings that clap cannot express.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.admin_token.len() >= 16,
            "the admin token must be at least 16 characters (TUMBLEWEED_ADMIN_TOKEN)"
        );
        anyhow::ensure!(
            self.wal_warn_bytes < self.wal_critical_bytes,
            "TUMBLEWEED_WAL_WARN_BYTES must be below TUMBLEWEED_WAL_CRITICAL_BYTES"
        );
        anyhow::ensure!(
            self.buffer_events_per_partition >= 16,
            "TUMBLEWEED_BUFFER_EVENTS must be at least 16"
        );
        anyhow::ensure!(
            self.buffer_bytes_per_topic >= 1 << 20 && self.buffer_bytes >= 1 << 20,
            "TUMBLEWEED_BUFFER_BYTES_PER_TOPIC and TUMBLEWEED_BUFFER_BYTES must be at least 1 MiB (1048576)"
        );
        anyhow::ensure!(
            self.stats_window_secs >= 2 * self.stats_interval_secs,
            "TUMBLEWEED_STATS_WINDOW_SECS must hold at least two samples (2 × TUMBLEWEED_STATS_INTERVAL_SECS)"
        );
        anyhow::ensure!(
            self.max_chunk_events >= 1,
            "TUMBLEWEED_MAX_CHUNK_EVENTS must be at least 1"
        );
        if let Some(root) = &self.source_default_sslrootcert {
            // Checked now, not at the first creation that falls back on it.
            RootCert::parse(root)
                .and_then(|r| r.load())
                .map_err(|e| anyhow::anyhow!("TUMBLEWEED_SOURCE_DEFAULT_SSLROOTCERT: {e}"))?;
        }
        anyhow::ensure!(
            std::path::Path::new(&self.connect_rds_ca_path).is_absolute(),
            "TUMBLEWEED_CONNECT_RDS_CA_PATH must be an absolute path (the Connect workers' copy of the RDS CA bundle)"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &[&str]) -> Result<Config, String> {
        let args = ["tumbleweed-sink", "--admin-token", "0123456789abcdef0123"];
        let config = Config::try_parse_from(args.iter().chain(extra)).map_err(|e| e.to_string())?;
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }

    #[test]
    fn source_tls_defaults_are_parsed_and_checked_at_startup() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.source_default_sslmode, SslMode::Prefer);
        assert_eq!(c.source_default_sslrootcert, None);
        assert_eq!(
            c.connect_rds_ca_path,
            "/tmp/tumbleweed/rds-global-bundle.pem"
        );
        let c = parse(&[
            "--source-default-sslmode",
            "verify-full",
            "--source-default-sslrootcert",
            "rds",
        ])
        .unwrap();
        assert_eq!(c.source_default_sslmode, SslMode::VerifyFull);
        let e = parse(&["--source-default-sslmode", "verify"]).unwrap_err();
        assert!(e.contains("verify-full"), "{e}");
        let e = parse(&["--source-default-sslrootcert", "/nonexistent/ca.pem"]).unwrap_err();
        assert!(
            e.contains("TUMBLEWEED_SOURCE_DEFAULT_SSLROOTCERT") && e.contains("cannot read it"),
            "{e}"
        );
        let e = parse(&["--connect-rds-ca-path", "rds.pem"]).unwrap_err();
        assert!(e.contains("TUMBLEWEED_CONNECT_RDS_CA_PATH"), "{e}");
    }
}
