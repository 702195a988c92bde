//! The red strips: which warnings show, most important first, and what they say; counters that
//! grew lately and counters that stand still. `[gui-thread]`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use osc_timecode_core::clock::{MAX_SAMPLE_RATE, MIN_SAMPLE_RATE};
use osc_timecode_core::rate::{RateAgreement, disagreement_text};
use osc_timecode_core::{FrameRate, HostRate};

use crate::readout::{BindFailure, ListenState, ReadoutSnapshot};
use crate::settings::cues::Exposure;
use crate::settings::outputs::OutputNotice;

/// How long a counter that grew keeps its warning up.
pub const WARN_FOR: Duration = Duration::from_secs(5);
/// Blocks not advancing for this long means the host stopped running the plugin.
pub const IDLE_AFTER: Duration = Duration::from_secs(1);

/// Something the user should fix, shown in red above everything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Warning {
    /// The plugin is not active.
    Inactive,
    /// Active, but `process()` has not run for this long.
    NotProcessing(Duration),
    /// The host gives no transport position.
    NoPosition,
    /// Another program holds the cue input's port.
    ListenInUse(SocketAddr),
    /// The cue input cannot listen for another reason.
    ListenFailed(SocketAddr, BindFailure),
    /// The settings ask for cue input from beyond this machine (this listen address, or the
    /// allow-list), but the machine's config file does not allow it: loopback only.
    CueInputConfined(SocketAddr),
    /// The cue input takes cues from beyond this machine without a token.
    CueInputWithoutToken,
    /// Output is on but there is no target.
    NoTargets,
    /// The OS refused datagrams to a target lately.
    SendErrors,
    /// No sending socket could be opened lately.
    NoSocket,
    /// Frames were dropped lately because the network thread fell behind.
    FramesDropped,
    /// The host's project runs at another frame rate (first) than the one we send (second).
    HostRate(HostRate, FrameRate),
    /// The host's sample rate (whole Hz) is outside what the plugin runs at: activation refused,
    /// or no timecode since a mid-stream change to it.
    SampleRate(u32),
    /// LTC, MTC or Art-Net (those that are on) refuse the Frame Rate, or carry it as another rate
    /// or in frame pairs.
    Outputs(OutputNotice),
}

impl Warning {
    /// What the window says.
    pub fn text(&self) -> String {
        match self {
            Self::Inactive => {
                "Not active: the host has not started processing this plugin, so no timecode is sent.".into()
            }
            Self::NotProcessing(d) => format!(
                "No audio from the host for {} s: timecode stops while the host does not process this track.",
                d.as_secs()
            ),
            Self::NoPosition => {
                "No transport from the host: it gives no position, so nothing is sent until it does.".into()
            }
            Self::ListenInUse(addr) => {
                format!("Cue input: {addr} is in use by another program (retrying every second). Pick another port.")
            }
            Self::ListenFailed(addr, why) => {
                format!("Cue input: cannot listen on {addr}: {}.", bind_failure_text(*why))
            }
            Self::CueInputConfined(asked) => format!(
                "Cue input: these settings take cues from the network ({asked} or the allow-list), but this \
                 machine's config file does not allow that (network_cue_input = true under [plugin]): loopback only."
            ),
            Self::CueInputWithoutToken => "Cue input: open to the network without a token. Anyone who can reach \
                                           this machine can send cues: set a token."
                .into(),
            Self::NoTargets => "No targets: timecode goes nowhere. Add one under Timecode.".into(),
            Self::SendErrors => "Sending fails to some targets (see the errors column).".into(),
            Self::NoSocket => "Cannot open a socket to send timecode (see the host's log).".into(),
            Self::FramesDropped => "Frames were dropped: the network thread fell behind.".into(),
            Self::HostRate(host, ours) => sentence(&disagreement_text(*host, *ours)),
            Self::SampleRate(hz) => format!(
                "The host runs at {hz} Hz: this plugin works at {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz, so no \
                 timecode is sent. Change the project's or the audio device's sample rate."
            ),
            Self::Outputs(notice) => sentence(&notice.to_string()),
        }
    }

    /// Informational rather than a fault: a substitution or half rate is said, a refusal is a
    /// fault.
    pub fn is_info(&self) -> bool {
        match self {
            Self::Inactive | Self::NoTargets => true,
            Self::Outputs(notice) => !notice.is_refusal(),
            _ => false,
        }
    }
}

/// A log line as a sentence: capitalised, with a full stop.
fn sentence(line: &str) -> String {
    let mut chars = line.chars();
    chars.next().map_or_else(String::new, |first| format!("{}{}.", first.to_uppercase(), chars.as_str()))
}

/// Why a bind failed, as the window says it.
pub fn bind_failure_text(failure: BindFailure) -> &'static str {
    match failure {
        BindFailure::InUse => "the port is in use by another program",
        BindFailure::NotAvailable => "that address is not one of this machine's",
        BindFailure::Denied => "permission denied (ports below 1024 need privileges)",
        BindFailure::Other => "the system refused (see the host's log)",
    }
}

/// What the warnings are computed from, gathered by the window once per repaint.
#[derive(Debug, Clone, Copy)]
pub struct Health {
    /// The audio thread's readout.
    pub readout: ReadoutSnapshot,
    /// How long the block count has not moved.
    pub idle: Duration,
    /// The Output parameter.
    pub output_on: bool,
    /// The Frame Rate parameter.
    pub rate: FrameRate,
    /// Number of targets.
    pub targets: usize,
    /// The cue input is enabled.
    pub cue_enabled: bool,
    /// The cue input's socket.
    pub listen: ListenState,
    /// Send errors grew within [`WARN_FOR`].
    pub send_errors: bool,
    /// Socket failures grew within [`WARN_FOR`].
    pub socket_errors: bool,
    /// Dropped frames grew within [`WARN_FOR`].
    pub frames_dropped: bool,
    /// What the outputs that are on do with the Frame Rate.
    pub outputs: OutputNotice,
}

/// The warnings for `health`, most important first.
pub fn warnings(health: &Health) -> Vec<Warning> {
    let mut out = Vec::new();
    let r = &health.readout;
    // A refused sample rate is why the plugin is inactive or has no position: say that instead.
    if let Some(hz) = r.refused_rate {
        out.push(Warning::SampleRate(hz));
    } else if !r.active {
        out.push(Warning::Inactive);
    } else if health.idle >= IDLE_AFTER {
        out.push(Warning::NotProcessing(health.idle));
    } else if !r.has_position && !r.offline {
        out.push(Warning::NoPosition);
    }
    if health.outputs != OutputNotice::Quiet {
        out.push(Warning::Outputs(health.outputs));
    }
    if r.active
        && let RateAgreement::Disagrees(host, ours) = RateAgreement::of(r.host_rate, health.rate)
    {
        out.push(Warning::HostRate(host, ours));
    }
    if health.cue_enabled {
        match health.listen.failure {
            Some((addr, BindFailure::InUse)) => out.push(Warning::ListenInUse(addr)),
            Some((addr, why)) => out.push(Warning::ListenFailed(addr, why)),
            None => {}
        }
        match health.listen.exposure {
            Exposure::Confined { asked } => out.push(Warning::CueInputConfined(asked)),
            Exposure::Network { token: false } => out.push(Warning::CueInputWithoutToken),
            Exposure::Loopback | Exposure::Network { token: true } => {}
        }
    }
    if health.output_on && health.targets == 0 {
        out.push(Warning::NoTargets);
    }
    for (on, warning) in [
        (health.send_errors, Warning::SendErrors),
        (health.socket_errors, Warning::NoSocket),
        (health.frames_dropped, Warning::FramesDropped),
    ] {
        if on {
            out.push(warning);
        }
    }
    out
}

/// Whether a counter grew lately.
#[derive(Debug, Clone, Copy, Default)]
pub struct Growth {
    /// The value last seen; `None` before the first.
    last: Option<u64>,
    /// When it last grew.
    grew_at: Option<Instant>,
}

impl Growth {
    /// Takes the counter's `value` at `now`; true if it grew within [`WARN_FOR`]. Counts that
    /// were there when the window opened are history, not news.
    pub fn update(&mut self, value: u64, now: Instant) -> bool {
        if self.last.is_some_and(|last| value > last) {
            self.grew_at = Some(now);
        }
        self.last = Some(value);
        self.grew_at.is_some_and(|t| now.duration_since(t) < WARN_FOR)
    }
}

/// How long a counter has stood still.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stillness {
    /// The value last seen and when it last changed.
    last: Option<(u64, Instant)>,
}

impl Stillness {
    /// Takes the counter's `value` at `now`; how long it has not moved (zero on first sight).
    pub fn update(&mut self, value: u64, now: Instant) -> Duration {
        match self.last {
            Some((last, since)) if last == value => now.duration_since(since),
            _ => {
                self.last = Some((value, now));
                Duration::ZERO
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::editor::fixtures::{addr, snapshot};

    fn healthy() -> Health {
        Health {
            readout: snapshot(true, false, Some(true), true),
            idle: Duration::ZERO,
            output_on: true,
            rate: FrameRate::FPS_25,
            targets: 1,
            cue_enabled: true,
            listen: ListenState { bound: Some(addr("127.0.0.1:5005")), ..ListenState::default() },
            send_errors: false,
            socket_errors: false,
            frames_dropped: false,
            outputs: OutputNotice::Quiet,
        }
    }

    #[test]
    fn warnings_name_each_fault() {
        assert_eq!(warnings(&healthy()), []);
        let listen = addr("127.0.0.1:5005");
        type Case = (fn(&mut Health), Vec<Warning>);
        let cases: [Case; 16] = [
            (|h| h.readout.active = false, vec![Warning::Inactive]),
            (|h| (h.readout.active, h.readout.refused_rate) = (false, Some(7_999)), vec![Warning::SampleRate(7_999)]),
            (
                |h| (h.readout.has_position, h.readout.refused_rate) = (false, Some(4_000)),
                vec![Warning::SampleRate(4_000)],
            ),
            (|h| h.idle = Duration::from_secs(3), vec![Warning::NotProcessing(Duration::from_secs(3))]),
            (|h| h.readout.has_position = false, vec![Warning::NoPosition]),
            (
                |h| {
                    h.listen = ListenState {
                        failure: Some((addr("127.0.0.1:5005"), BindFailure::InUse)),
                        ..ListenState::default()
                    }
                },
                vec![Warning::ListenInUse(listen)],
            ),
            (
                |h| h.listen.failure = Some((addr("127.0.0.1:5005"), BindFailure::NotAvailable)),
                vec![Warning::ListenFailed(listen, BindFailure::NotAvailable)],
            ),
            (
                |h| h.listen.exposure = Exposure::Confined { asked: addr("0.0.0.0:5005") },
                vec![Warning::CueInputConfined(addr("0.0.0.0:5005"))],
            ),
            (|h| h.listen.exposure = Exposure::Network { token: false }, vec![Warning::CueInputWithoutToken]),
            (|h| h.listen.exposure = Exposure::Network { token: true }, vec![]),
            (|h| h.targets = 0, vec![Warning::NoTargets]),
            (|h| h.send_errors = true, vec![Warning::SendErrors]),
            (|h| h.socket_errors = true, vec![Warning::NoSocket]),
            (|h| h.frames_dropped = true, vec![Warning::FramesDropped]),
            (
                |h| h.readout.host_rate = Some(HostRate::of(FrameRate::FPS_29_97_DF)),
                vec![Warning::HostRate(HostRate::of(FrameRate::FPS_29_97_DF), FrameRate::FPS_25)],
            ),
            (
                |h| (h.readout.host_rate, h.rate) = (Some(HostRate::of(FrameRate::FPS_25)), FrameRate::FPS_24),
                vec![Warning::HostRate(HostRate::of(FrameRate::FPS_25), FrameRate::FPS_24)],
            ),
        ];
        for (edit, want) in cases {
            let mut h = healthy();
            edit(&mut h);
            assert_eq!(warnings(&h), want);
        }
        // What does not warn: a failed bind while the input is off, no targets while output is
        // off, no position during an offline render.
        let mut h = healthy();
        h.cue_enabled = false;
        h.listen.failure = Some((listen, BindFailure::InUse));
        h.output_on = false;
        h.targets = 0;
        assert_eq!(warnings(&h), []);
        h.readout.offline = true;
        h.readout.has_position = false;
        assert_eq!(warnings(&h), []);
        // A host that agrees, at every rate, says nothing; nor does an inactive plugin's last one.
        for rate in FrameRate::ALL {
            let mut h = healthy();
            (h.readout.host_rate, h.rate) = (Some(HostRate::of(rate)), rate);
            assert_eq!(warnings(&h), [], "{rate:?}");
        }
        let mut h = healthy();
        (h.readout.host_rate, h.readout.active) = (Some(HostRate::of(FrameRate::FPS_24)), false);
        assert_eq!(warnings(&h), [Warning::Inactive]);
        let text = Warning::HostRate(HostRate::of(FrameRate::FPS_24), FrameRate::FPS_29_97_DF).text();
        assert!(
            text.starts_with("The host's project frame rate is 24 fps but Frame Rate is 29.97 fps drop-frame")
                && text.ends_with("change the project's rate."),
            "{text}"
        );
        let odd = HostRate { fps: 48, pull_down: Some(false), drop: false };
        assert!(Warning::HostRate(odd, FrameRate::FPS_24).text().contains("48 fps, which is none of the ten"));
        assert!(!Warning::HostRate(odd, FrameRate::FPS_24).is_info());
        assert!(Warning::ListenInUse(listen).text().contains("127.0.0.1:5005 is in use"));
        assert!(Warning::NotProcessing(Duration::from_secs(2)).text().contains("for 2 s"));
        assert!(
            Warning::SampleRate(7_999).text().starts_with("The host runs at 7999 Hz: this plugin works at 8000 to")
        );
        assert!(!Warning::SampleRate(7_999).is_info());
        assert!(Warning::Inactive.is_info() && !Warning::NoPosition.is_info());
    }

    #[test]
    fn the_outputs_refusals_and_substitutions_are_named() {
        use crate::settings::outputs::OutputsOn;
        let all = OutputsOn { ltc: true, mtc: true, artnet: true };
        let mut h = healthy();
        h.outputs = OutputNotice::for_outputs(FrameRate::FPS_50, false, all);
        h.rate = FrameRate::FPS_50;
        let w = warnings(&h);
        assert_eq!(w, [Warning::Outputs(h.outputs)]);
        assert!(!w[0].is_info(), "a refusal is a fault");
        assert_eq!(
            w[0].text(),
            "LTC, MTC and Art-Net cannot carry 50 fps: turn on half_rate to send frame pairs at 25 fps; nothing is \
             sent on them until then."
        );
        h.outputs = OutputNotice::for_outputs(FrameRate::FPS_29_97_NDF, false, OutputsOn { ltc: false, ..all });
        let w = warnings(&h);
        assert!(w[0].is_info(), "a substitution is information");
        assert_eq!(
            w[0].text(),
            "29.97 fps sent as 30 fps on MTC and Art-Net (receivers that run their own clock from it run 0.1 % fast)."
        );
        // Shown while inactive too: it is about the settings, not the host.
        h.readout.active = false;
        assert_eq!(warnings(&h), [Warning::Inactive, Warning::Outputs(h.outputs)]);
    }

    #[test]
    fn growth_warns_for_a_while_after_a_counter_moves_and_history_is_not_news() {
        let t0 = Instant::now();
        let mut g = Growth::default();
        assert!(!g.update(7, t0), "counts from before the window opened");
        assert!(!g.update(7, t0 + Duration::from_secs(1)));
        assert!(g.update(8, t0 + Duration::from_secs(2)));
        assert!(g.update(8, t0 + Duration::from_secs(6)));
        assert!(!g.update(8, t0 + Duration::from_secs(7)));
        let mut s = Stillness::default();
        assert_eq!(s.update(1, t0), Duration::ZERO);
        assert_eq!(s.update(1, t0 + Duration::from_secs(2)), Duration::from_secs(2));
        assert_eq!(s.update(2, t0 + Duration::from_secs(3)), Duration::ZERO);
    }
}
