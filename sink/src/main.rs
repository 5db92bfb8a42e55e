//! `tumbleweed-sink`: a thin binary over the library. Parses the configuration, starts the
//! sink, and shuts it down gracefully on SIGINT or SIGTERM. Errors reach the operator as one
//! line.

use clap::Parser;
use tokio::signal::unix::{signal, SignalKind};
use tumbleweed_sink::config::Config;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,rdkafka=warn".into()),
        )
        .init();
    let config = Config::parse();
    if let Err(e) = run(config).await {
        eprintln!("tumbleweed-sink: error: {e:#}");
        std::process::exit(1);
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    let sink = tumbleweed_sink::server::start(config).await?;
    tracing::info!(addr = %sink.addr, "tumbleweed-sink listening");
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut task = sink.task;
    tokio::select! {
        r = &mut task => return r?,
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("shutting down");
    sink.shutdown.cancel();
    task.await?
}
