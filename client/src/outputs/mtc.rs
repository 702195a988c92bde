//! Placeholder while issue 17's mtc output is written (replaced before it lands).

use std::sync::Arc;

use super::{Running, Say, Timeline};

/// `--mtc PORT`.
pub fn start(name: &str, _half_rate: bool, _timeline: &Arc<Timeline>, _say: &Say) -> anyhow::Result<Box<dyn Running>> {
    anyhow::bail!("MTC to MIDI port {name}: not built yet")
}
