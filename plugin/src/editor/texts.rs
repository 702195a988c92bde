//! What the window says: the big timecode, the transport badge, the line under the readout, and
//! counts, ages, MIDI events and cue outcomes as text. `[gui-thread]`.

use std::net::SocketAddr;
use std::time::Duration;

use osc_timecode_core::FrameRate;
use osc_timecode_core::carriage::Carriage;
use osc_timecode_core::cue::AckStatus;
use osc_timecode_core::timecode::Timecode;

use crate::cues::DropReason;
use crate::readout::{Position, ReadoutSnapshot, RecentCue};
use crate::settings::cues::CueAction;
use crate::settings::values::NoteLength;

/// The big timecode and what goes beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimecodeText {
    /// `HH:MM:SS:FF`, `HH:MM:SS;FF` at drop-frame rates, `--:--:--:--` before the first frame.
    pub label: String,
    /// `"25 fps"`, `"29.97 fps"`.
    pub rate: &'static str,
    /// `"DF"` at drop-frame rates, `"NDF"` at the other 1000/1001 rates, `""` otherwise.
    pub marker: &'static str,
}

/// The readout for the latest `position`; before any, dashes at the `rate` parameter's rate.
pub fn timecode_text(position: Option<Position>, rate: FrameRate) -> TimecodeText {
    let (label, rate) = match position {
        Some(p) => (Timecode::from_frame(p.frame, p.rate).label().as_str().to_owned(), p.rate),
        None => (format!("--:--:--{}--", if rate.is_drop() { ';' } else { ':' }), rate),
    };
    let marker = match (rate.is_drop(), rate.den()) {
        (true, _) => "DF",
        (false, 1001) => "NDF",
        _ => "",
    };
    TimecodeText { label, rate: rate_text(rate), marker }
}

/// `"29.97 fps"`: the rate as people say it, drop-frame or not.
pub fn rate_text(rate: FrameRate) -> &'static str {
    const TEXT: [&str; 10] = [
        "23.976 fps",
        "24 fps",
        "25 fps",
        "29.97 fps",
        "29.97 fps",
        "30 fps",
        "50 fps",
        "59.94 fps",
        "59.94 fps",
        "60 fps",
    ];
    TEXT[rate.index()]
}

/// How the Frame Rate `rate` goes out on LTC, MTC and Art-Net, with `half_rate` or not: the
/// Outputs tab's first line (the words of the rates are core's [`Carriage`]'s).
pub fn carriage_text(rate: FrameRate, half_rate: bool) -> String {
    match Carriage::of(rate, half_rate) {
        Ok(how) => format!("LTC, MTC and Art-Net carry the Frame Rate as: {how}."),
        Err(why) => format!("LTC, MTC and Art-Net {why}."),
    }
}

/// What the transport badge says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportState {
    /// Between activations: the host has not started (or has stopped) its engine.
    Inactive,
    /// The host renders offline (bounce).
    OfflineRender,
    /// The Output parameter is off.
    OutputOff,
    /// Rolling.
    Playing,
    /// Parked.
    Stopped,
}

impl TransportState {
    /// The badge text.
    pub fn label(self) -> &'static str {
        match self {
            Self::Inactive => "NOT ACTIVE",
            Self::OfflineRender => "OFFLINE RENDER",
            Self::OutputOff => "OUTPUT OFF",
            Self::Playing => "PLAYING",
            Self::Stopped => "STOPPED",
        }
    }
}

/// The transport badge for `readout` with the Output parameter `output_on`.
pub fn transport_state(readout: &ReadoutSnapshot, output_on: bool) -> TransportState {
    if !readout.active {
        TransportState::Inactive
    } else if readout.offline {
        TransportState::OfflineRender
    } else if !output_on {
        TransportState::OutputOff
    } else if readout.position.is_some_and(|p| p.playing) && readout.has_position {
        TransportState::Playing
    } else {
        TransportState::Stopped
    }
}

/// The cue input as the line under the readout sums it up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CueSummary {
    /// The input is enabled.
    pub enabled: bool,
    /// The address it is bound to, if it is.
    pub bound: Option<SocketAddr>,
    /// Messages received.
    pub received: u64,
    /// Messages applied.
    pub applied: u64,
    /// Messages dropped, every reason.
    pub dropped: u64,
}

/// The line under the readout: `"48 kHz · 2 targets · cues on 127.0.0.1:5005: 3 received, 3
/// applied, 0 dropped"`, what the plugin runs at, where timecode goes and what the cue input does.
pub fn status_line(sample_rate: u32, targets: usize, cues: CueSummary) -> String {
    let mut parts = Vec::new();
    if sample_rate > 0 {
        let khz = f64::from(sample_rate) / 1000.0;
        parts.push(if sample_rate.is_multiple_of(1000) { format!("{khz:.0} kHz") } else { format!("{khz:.1} kHz") });
    }
    parts.push(match targets {
        0 => "no targets".into(),
        1 => "1 target".into(),
        n => format!("{n} targets"),
    });
    let counts = || {
        format!(
            "{} received, {} applied, {} dropped",
            format_count(cues.received),
            format_count(cues.applied),
            format_count(cues.dropped)
        )
    };
    parts.push(match (cues.enabled, cues.bound) {
        (false, _) => "cue input off".into(),
        (true, Some(addr)) => format!("cues on {addr}: {}", counts()),
        (true, None) => format!("cue input not listening: {}", counts()),
    });
    parts.join("  ·  ")
}

/// `1234567` → `"1 234 567"` (thin spaces: a count read from across the room).
pub fn format_count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() * 2);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{2009}');
        }
        out.push(c);
    }
    out
}

/// How long ago: `"now"`, `"12 s"`, `"3 min"`, `"2 h"`.
pub fn format_age(age: Duration) -> String {
    match age.as_secs() {
        0 => "now".into(),
        s @ 1..60 => format!("{s} s"),
        s @ 60..3600 => format!("{} min", s / 60),
        s => format!("{} h", s / 3600),
    }
}

/// A mapped action as the window lists it: `"note 60 vel 127, 100 ms · ch 1"`,
/// `"output = 0.000"`, `"macro1 → 1.000 over 500 ms"`.
pub fn format_action(action: &CueAction) -> String {
    match *action {
        CueAction::Note { channel, key, velocity, length_ms: NoteLength::HELD } => {
            format!("note {} vel {}, held · ch {}", key.get(), velocity.get(), u8::from(channel))
        }
        CueAction::Note { channel, key, velocity, length_ms } => {
            format!("note {} vel {}, {length_ms} ms · ch {}", key.get(), velocity.get(), u8::from(channel))
        }
        CueAction::NoteOff { channel, key } => format!("note off {} · ch {}", key.get(), u8::from(channel)),
        CueAction::Cc { channel, number, value } => {
            format!("CC {} = {} · ch {}", number.get(), value.get(), u8::from(channel))
        }
        CueAction::Program { channel, program } => format!("program {} · ch {}", program.get(), u8::from(channel)),
        CueAction::Param { param, value, ramp_ms } => {
            let value = value.map_or_else(|| "the cue's value".to_owned(), |v| format!("{:.3}", v.get()));
            match ramp_ms.get() {
                0 => format!("{param} = {value}"),
                ms => format!("{param} → {value} over {ms} ms"),
            }
        }
    }
}

/// The MIDI a recent cue became, or why it became none.
pub fn format_outcome(cue: &RecentCue) -> String {
    let events: Vec<String> = cue.actions().map(format_action).collect();
    match (cue.status, events.is_empty()) {
        (AckStatus::Ok, _) => events.join("; "),
        (status, true) => status_text(status).into(),
        (status, false) => format!("{}: {}", status_text(status), events.join("; ")),
    }
}

/// An ack status in words.
pub fn status_text(status: AckStatus) -> &'static str {
    match status {
        AckStatus::Ok => "ok",
        AckStatus::Duplicate => "duplicate (a retry)",
        AckStatus::Unmapped => "unmapped",
        AckStatus::BadArgument => "bad argument",
        AckStatus::TooBroad => "pattern too broad",
        AckStatus::TooFarAhead => "too far ahead",
        AckStatus::ScheduleFull => "schedule full",
        AckStatus::QueueFull => "queue full",
    }
}

/// A drop counter's name in words: `dropped_not_allowed` → `"not allowed"`.
pub fn drop_reason_text(reason: DropReason) -> String {
    let name = reason.counter_name();
    name.strip_prefix("dropped_").unwrap_or(name).replace('_', " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::editor::fixtures::{addr, recent, snapshot};
    use crate::settings::values::{Channel, Normalized, RampMs, U7};

    #[test]
    fn the_outputs_tab_says_how_the_rate_goes_out() {
        assert_eq!(carriage_text(FrameRate::FPS_25, false), "LTC, MTC and Art-Net carry the Frame Rate as: 25 fps.");
        assert_eq!(
            carriage_text(FrameRate::FPS_29_97_NDF, true),
            "LTC, MTC and Art-Net carry the Frame Rate as: 29.97 fps sent as 30 fps."
        );
        assert_eq!(
            carriage_text(FrameRate::FPS_59_94_DF, true),
            "LTC, MTC and Art-Net carry the Frame Rate as: 59.94 fps drop-frame at half rate: frame pairs as 29.97 \
             fps drop-frame."
        );
        assert_eq!(
            carriage_text(FrameRate::FPS_60, false),
            "LTC, MTC and Art-Net cannot carry 60 fps: turn on half_rate to send frame pairs at 30 fps."
        );
    }

    #[test]
    fn timecode_text_shows_label_rate_and_marker() {
        let p = |frame, rate| Some(Position { frame, rate, playing: true });
        let t = timecode_text(p(90_000, FrameRate::FPS_25), FrameRate::FPS_25);
        assert_eq!(t, TimecodeText { label: "01:00:00:00".into(), rate: "25 fps", marker: "" });
        // 29.97 DF: one minute in is 00:01:00;02 (labels ;00 and ;01 are skipped).
        let t = timecode_text(p(1800, FrameRate::FPS_29_97_DF), FrameRate::FPS_25);
        assert_eq!((t.label.as_str(), t.rate, t.marker), ("00:01:00;02", "29.97 fps", "DF"));
        let t = timecode_text(p(0, FrameRate::FPS_59_94_NDF), FrameRate::FPS_25);
        assert_eq!((t.label.as_str(), t.marker), ("00:00:00:00", "NDF"));
        assert_eq!(timecode_text(None, FrameRate::FPS_29_97_DF).label, "--:--:--;--");
        assert_eq!(timecode_text(None, FrameRate::FPS_24).label, "--:--:--:--");
        // Past midnight the label wraps, as on the wire.
        assert_eq!(timecode_text(p(24 * 3600 * 25 + 1, FrameRate::FPS_25), FrameRate::FPS_25).label, "00:00:00:01");
        for rate in FrameRate::ALL {
            assert!(rate_text(rate).starts_with(&rate.name()[..2]), "{rate}");
        }
    }

    #[test]
    fn the_status_line_sums_up_rate_targets_and_cues() {
        let cues = CueSummary {
            enabled: true,
            bound: Some(addr("127.0.0.1:5005")),
            received: 1200,
            applied: 1190,
            dropped: 10,
        };
        assert_eq!(
            status_line(48_000, 2, cues),
            "48 kHz  ·  2 targets  ·  cues on 127.0.0.1:5005: 1\u{2009}200 received, 1\u{2009}190 applied, 10 dropped"
        );
        assert_eq!(
            status_line(44_100, 1, CueSummary { bound: None, ..cues }),
            "44.1 kHz  ·  1 target  ·  cue input not listening: 1\u{2009}200 received, 1\u{2009}190 applied, 10 dropped"
        );
        assert_eq!(status_line(0, 0, CueSummary { enabled: false, ..cues }), "no targets  ·  cue input off");
    }

    #[test]
    fn transport_state_is_decided_in_order() {
        use TransportState::*;
        for (s, output, want) in [
            (snapshot(false, true, Some(true), true), true, Inactive),
            (snapshot(true, true, Some(true), true), false, OfflineRender),
            (snapshot(true, false, Some(true), true), false, OutputOff),
            (snapshot(true, false, Some(true), true), true, Playing),
            (snapshot(true, false, Some(false), true), true, Stopped),
            (snapshot(true, false, None, true), true, Stopped),
            (snapshot(true, false, Some(true), false), true, Stopped),
        ] {
            assert_eq!(transport_state(&s, output), want, "{s:?} output {output}");
        }
        assert_eq!(OfflineRender.label(), "OFFLINE RENDER");
    }

    #[test]
    fn counts_ages_and_midi_read_well() {
        assert_eq!(format_count(0), "0");
        assert_eq!(format_count(999), "999");
        assert_eq!(format_count(1000), "1\u{2009}000");
        assert_eq!(format_count(1_234_567), "1\u{2009}234\u{2009}567");
        for (secs, want) in [(0, "now"), (1, "1 s"), (59, "59 s"), (60, "1 min"), (3599, "59 min"), (7200, "2 h")] {
            assert_eq!(format_age(Duration::from_secs(secs)), want);
        }
        let ch = Channel::try_from(2).unwrap();
        let u = |n| U7::new(n).unwrap();
        assert_eq!(
            format_action(&CueAction::Note {
                channel: ch,
                key: u(60),
                velocity: u(100),
                length_ms: NoteLength::new(250).unwrap()
            }),
            "note 60 vel 100, 250 ms · ch 2"
        );
        assert_eq!(
            format_action(&CueAction::Note { channel: ch, key: u(60), velocity: u(100), length_ms: NoteLength::HELD }),
            "note 60 vel 100, held · ch 2"
        );
        assert_eq!(format_action(&CueAction::NoteOff { channel: ch, key: u(1) }), "note off 1 · ch 2");
        assert_eq!(format_action(&CueAction::Cc { channel: ch, number: u(7), value: u(64) }), "CC 7 = 64 · ch 2");
        assert_eq!(format_action(&CueAction::Program { channel: ch, program: u(12) }), "program 12 · ch 2");
        let output = crate::params::ParamRef::from_id("output").unwrap();
        let (zero, ramp) = (Normalized::new(0.0), RampMs::new(500).unwrap());
        assert_eq!(
            format_action(&CueAction::Param { param: output, value: zero, ramp_ms: RampMs::MIN }),
            "output = 0.000"
        );
        assert_eq!(
            format_action(&CueAction::Param { param: output, value: None, ramp_ms: ramp }),
            "output → the cue's value over 500 ms"
        );
        assert_eq!(drop_reason_text(DropReason::NotAllowed), "not allowed");
        assert_eq!(drop_reason_text(DropReason::TooFarAhead), "too far ahead");
    }

    #[test]
    fn outcomes_say_what_a_cue_became() {
        let program = CueAction::Program { channel: Channel::ONE, program: U7::MAX };
        assert_eq!(format_outcome(&recent(1, "/a", AckStatus::Ok, Some(program))), "program 127 · ch 1");
        assert_eq!(format_outcome(&recent(1, "/a", AckStatus::Unmapped, None)), "unmapped");
        assert_eq!(
            format_outcome(&recent(1, "/a", AckStatus::QueueFull, Some(program))),
            "queue full: program 127 · ch 1"
        );
    }
}
