//! `tumbleweed-sink`: a thin binary over the library (placeholder while the sink is built).
fn main() -> anyhow::Result<()> {
    anyhow::bail!("the tumbleweed sink is not built yet")
}
