//! The `tumbleweed` operator CLI (placeholder until the helper issue lands).
fn main() -> anyhow::Result<()> {
    anyhow::bail!("the tumbleweed helper CLI is not built yet")
}
