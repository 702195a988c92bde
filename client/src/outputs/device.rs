//! Placeholder while issue 17's device output is written (replaced before it lands).

use std::sync::Arc;

use super::spec::LtcSpec;
use super::{Running, Say, Timeline};

/// `--ltc DEVICE`.
pub fn start(
    _ltc: &LtcSpec,
    name: &str,
    _half_rate: bool,
    _timeline: &Arc<Timeline>,
    _say: &Say,
) -> anyhow::Result<Box<dyn Running>> {
    anyhow::bail!("LTC to audio device {name}: not built yet")
}
