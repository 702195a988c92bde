//! The timecode outputs show equipment reads, beside the OSC stream: LTC audio ([`ltc`]) and MTC
//! ([`mtc`]) rendered on the audio thread from the frame clock's spans
//! ([`osc_timecode_core::span`]), and Art-Net ArtTimeCode sent by the network thread
//! ([`crate::network`]) when each frame is heard.
//!
//! All three come from the same frame clock as the OSC stream: the same labels, start offset,
//! pre-roll and 24 h wrap. Their settings are `[plugin.ltc]`, `[plugin.mtc]`, `[plugin.artnet]`
//! and `half_rate` ([`crate::settings`]). The audio thread cannot read the settings (they are
//! behind a lock), so the part it needs is published as one packed word ([`AudioSwitches`]),
//! stored by `activate()` and by the network thread each time it re-reads the settings.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::settings::outputs::{AudioOutputs, LtcStopped};

use ltc::LtcPlan;

pub mod ltc;
pub mod mtc;

/// Counters of the outputs. `[thread-safe]`, relaxed atomics (statistics): the `[audio-thread]`
/// and the `[network-thread]` add, the window and `/status` read.
#[derive(Debug, Default)]
pub struct OutputStats {
    /// LTC words begun in the plugin's audio output (frames, or frame pairs in half-rate mode,
    /// whose first sample was written).
    pub ltc_words: AtomicU64,
    /// Frames LTC did not carry because it cannot carry the rate (50/59.94/60 without half rate).
    pub ltc_rate_refused: AtomicU64,
    /// MTC messages (quarter frames and full frames) the host took.
    pub mtc_sent: AtomicU64,
    /// MTC messages not sent: the host refused them (`try_send_event` failed: its output buffer
    /// full, or no MIDI output) or the block had more than [`mtc::MAX_MESSAGES_PER_BLOCK`].
    pub mtc_refused: AtomicU64,
    /// Frames MTC did not carry because it cannot carry the rate (50/59.94/60 without half rate).
    pub mtc_rate_refused: AtomicU64,
}

impl OutputStats {
    /// Adds `n` to `counter`.
    pub fn add(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }
}
/// The settings the audio thread needs, packed in one atomic word so it can load them each block
/// without a lock. `[thread-safe]`: `[main-thread]` (activation) and `[network-thread]` (each
/// settings refresh) store, the `[audio-thread]` loads.
#[derive(Debug)]
pub struct AudioSwitches {
    /// `AudioOutputs::pack()` of the latest settings.
    packed: AtomicU64,
}

impl AudioSwitches {
    /// Switches holding `outputs`.
    pub fn new(outputs: AudioOutputs) -> Self {
        Self { packed: AtomicU64::new(outputs.pack()) }
    }

    /// Publishes `outputs` to the audio thread.
    pub fn store(&self, outputs: AudioOutputs) {
        self.packed.store(outputs.pack(), Ordering::Relaxed);
    }

    /// `[audio-thread]` The latest published settings (one relaxed load).
    pub fn load(&self) -> AudioOutputs {
        AudioOutputs::unpack(self.packed.load(Ordering::Relaxed))
    }
}

impl From<AudioOutputs> for LtcPlan {
    fn from(outputs: AudioOutputs) -> Self {
        Self {
            left: outputs.ltc_channel.left(),
            right: outputs.ltc_channel.right(),
            level_dbfs: outputs.ltc_level.dbfs(),
            still: outputs.ltc_stopped == LtcStopped::Still,
            half_rate: outputs.half_rate,
        }
    }
}
