//! Placeholder while issue 17's list output is written (replaced before it lands).

/// `osc-timecode outputs`.
pub fn run() -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
