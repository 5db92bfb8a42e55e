//! `tumbleweed-sink` binary (placeholder until the sink issue lands).
fn main() -> anyhow::Result<()> {
    anyhow::bail!("the tumbleweed sink is not built yet")
}
