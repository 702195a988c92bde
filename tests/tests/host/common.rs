//! Shared set-up for the host tests: a plugin instance sending to its own loopback receiver, a
//! transport, and the checks every playback test makes.

use std::time::Duration;

use osc_timecode_core::FrameRate;
use osc_timecode_tests::clap::{ClapPlugin, Param, RunReport};
use osc_timecode_tests::expect::{Expected, Timing, assert_stream, assert_timetags, expected};
use osc_timecode_tests::receiver::{Packet, Receiver, messages};
use osc_timecode_tests::transport::Transport;

/// How long to wait for the expected packets (they are due within a block of being processed;
/// this only bounds a failing test).
pub const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(5);
/// After the expected packets, how long to listen for unexpected extra ones.
pub const EXTRA_WINDOW: Duration = Duration::from_millis(400);
/// How far a timetag may be from the packet's arrival (latency 0): generous for loaded machines.
pub const TIMETAG_SLACK: Duration = Duration::from_millis(250);

/// A plugin sending to a receiver of its own, with a transport.
pub struct Rig {
    /// The plugin.
    pub plugin: ClapPlugin,
    /// Its only target.
    pub rx: Receiver,
    /// The host transport.
    pub transport: Transport,
    /// Sample rate, frame rate, offset.
    pub timing: Timing,
}

impl Rig {
    /// Loads the plugin, points it at a fresh receiver with keep-alive off, sets the frame rate
    /// and activates at `sample_rate` with blocks up to `max_block`. The transport is stopped at 0.
    pub fn new(sample_rate: u32, rate: FrameRate, max_block: u32) -> Self {
        Self::with(sample_rate, rate, max_block, 0, |_| {})
    }

    /// Like [`Rig::new`] with a keep-alive interval and a hook to change more before activation.
    pub fn with(
        sample_rate: u32,
        rate: FrameRate,
        max_block: u32,
        keepalive_ms: u32,
        before_activate: impl FnOnce(&mut ClapPlugin),
    ) -> Self {
        let rx = Receiver::bind();
        let mut plugin = ClapPlugin::load();
        plugin.send_to(rx.addr(), keepalive_ms);
        plugin.set_param(Param::Rate, rate.index() as f64);
        before_activate(&mut plugin);
        plugin.activate(sample_rate, max_block);
        Self { plugin, rx, transport: Transport::new(sample_rate), timing: Timing::new(sample_rate, rate) }
    }

    /// Plays `seconds` of audio (rounded to samples) from the current position in blocks of
    /// `block`, checking the audio passes through.
    pub fn play_seconds(&mut self, seconds: f64, block: u32) -> RunReport {
        let samples = (seconds * f64::from(self.timing.sample_rate)).round() as u64;
        self.transport.play();
        self.run(samples, block)
    }

    /// Processes `samples` in blocks of `block` with the transport as it is.
    pub fn run(&mut self, samples: u64, block: u32) -> RunReport {
        let report = self.plugin.run(&mut self.transport, samples, block);
        assert_eq!(report.passthrough_mismatches, 0, "the plugin must pass audio through untouched");
        report
    }

    /// What the plugin must have sent for the transport's history so far.
    pub fn expected(&self) -> Vec<Expected> {
        expected(self.transport.history(), self.timing)
    }

    /// Waits for `want` packets, then listens a little longer for extras.
    pub fn receive(&self, want: usize) -> Vec<Packet> {
        receive(&self.rx, want)
    }

    /// Receives and checks the whole stream for the history so far; returns the packets.
    pub fn check(&self, what: &str) -> Vec<Packet> {
        let want = self.expected();
        let packets = self.receive(want.len());
        assert_stream(&messages(&packets), &want, self.timing.rate, what);
        assert_timetags(&packets, TIMETAG_SLACK, what);
        packets
    }
}

/// Waits for `want` packets on `rx`, then listens [`EXTRA_WINDOW`] longer for extras.
pub fn receive(rx: &Receiver, want: usize) -> Vec<Packet> {
    let mut packets = rx.collect(want, ARRIVAL_TIMEOUT);
    packets.extend(rx.collect_for(EXTRA_WINDOW));
    packets
}

/// Every supported rate with a label for test names.
pub fn rate(name: &str) -> FrameRate {
    name.parse().unwrap_or_else(|e| panic!("{e}"))
}
