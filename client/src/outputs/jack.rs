//! Placeholder while issue 17's jack output is written (replaced before it lands).

use std::sync::Arc;

use super::spec::LtcSpec;
use super::{Running, Say, Timeline};

/// `--ltc jack[:PORT]`.
pub fn start_ltc(
    _ltc: &LtcSpec,
    _port: Option<&str>,
    _half_rate: bool,
    _timeline: &Arc<Timeline>,
    _say: &Say,
) -> anyhow::Result<Box<dyn Running>> {
    anyhow::bail!("LTC to JACK: not built yet")
}

/// `--mtc jack[:PORT]`.
pub fn start_mtc(
    _port: Option<&str>,
    _half_rate: bool,
    _timeline: &Arc<Timeline>,
    _say: &Say,
) -> anyhow::Result<Box<dyn Running>> {
    anyhow::bail!("MTC to JACK: not built yet")
}
