//! The plugin window's logic without egui: what the readout says, which warnings show, and every
//! edit a user can make, checked before it reaches the settings. `view.rs` only draws it; all of
//! it runs on the `[gui-thread]` and is tested here without a window.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use osc_timecode_core::clock::{MAX_SAMPLE_RATE, MIN_SAMPLE_RATE};
use osc_timecode_core::cue::{AckStatus, parse_allow_entry};
use osc_timecode_core::pattern;
use osc_timecode_core::timecode::Timecode;
use osc_timecode_core::{FrameRate, HostRate};

use crate::cues::DropReason;
use crate::cues::map::{AllowEntry, Channel, Exposure, MAX_PATTERN_LEN, Mapping, MidiAction, PlainAddress, U7};
use crate::network::{RateAgreement, disagreement_text};
use crate::readout::{BindFailure, ListenState, Position, ReadoutSnapshot, RecentCue};
use crate::settings::Settings;

// ---------------------------------------------------------------------------------------------
// The readout.

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

// ---------------------------------------------------------------------------------------------
// Warnings.

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
            Self::HostRate(host, ours) => {
                let line = disagreement_text(*host, *ours);
                let mut chars = line.chars();
                chars.next().map_or_else(String::new, |first| format!("{}{}.", first.to_uppercase(), chars.as_str()))
            }
            Self::SampleRate(hz) => format!(
                "The host runs at {hz} Hz: this plugin works at {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz, so no \
                 timecode is sent. Change the project's or the audio device's sample rate."
            ),
        }
    }

    /// Informational rather than a fault.
    pub fn is_info(&self) -> bool {
        matches!(self, Self::Inactive | Self::NoTargets)
    }
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

// ---------------------------------------------------------------------------------------------
// Formatting.

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

/// A MIDI event as the window lists it: `"note 60 vel 127, 100 ms · ch 1"`.
pub fn format_midi(action: &MidiAction) -> String {
    match *action {
        MidiAction::Note { channel, key, velocity, length_ms: 0 } => {
            format!("note {} vel {}, held · ch {}", key.get(), velocity.get(), u8::from(channel))
        }
        MidiAction::Note { channel, key, velocity, length_ms } => {
            format!("note {} vel {}, {length_ms} ms · ch {}", key.get(), velocity.get(), u8::from(channel))
        }
        MidiAction::NoteOff { channel, key } => format!("note off {} · ch {}", key.get(), u8::from(channel)),
        MidiAction::Cc { channel, number, value } => {
            format!("CC {} = {} · ch {}", number.get(), value.get(), u8::from(channel))
        }
        MidiAction::Program { channel, program } => format!("program {} · ch {}", program.get(), u8::from(channel)),
    }
}

/// The MIDI a recent cue became, or why it became none.
pub fn format_outcome(cue: &RecentCue) -> String {
    let events: Vec<String> = cue.actions().map(format_midi).collect();
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

// ---------------------------------------------------------------------------------------------
// Validation: every field is checked here, and refused in place with the reason.

/// Why a field's text was refused. The message is what the window shows beside the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    /// Nothing typed.
    #[error("empty")]
    Empty,
    /// `localhost:5006`.
    #[error("{0:?} is a name: write an IP address, like 127.0.0.1 (names are not looked up)")]
    HostName(String),
    /// `127.0.0.1`.
    #[error("add a port, like {0}:5006")]
    NoPort(String),
    /// `::1:5006`.
    #[error("write IPv6 addresses in brackets, like [::1]:5006")]
    Ipv6Brackets,
    /// `127.0.0.1:70000`.
    #[error("port {0} is out of range (1-65535)")]
    PortRange(String),
    /// `127.0.0.1:0`.
    #[error("port 0 is not a port senders or receivers can use (1-65535)")]
    PortZero,
    /// Anything else that is not `IP:PORT`.
    #[error("not an address like 127.0.0.1:5006 or [::1]:5006")]
    NotAnAddress,
    /// Already in the list.
    #[error("{0} is already in the list")]
    Duplicate(String),
    /// Not an IP address or CIDR range.
    #[error("not an address or range, like 192.168.1.20 or 10.0.0.0/8")]
    NotARange,
    /// `10.0.0.0/33`.
    #[error("/{prefix} is longer than an {family} address (at most /{max})")]
    PrefixTooLong {
        /// The prefix typed.
        prefix: String,
        /// `"IPv4"` or `"IPv6"`.
        family: &'static str,
        /// 32 or 128.
        max: u8,
    },
    /// A token with spaces at its ends.
    #[error("no spaces at the start or end of the token")]
    TokenSpaces,
    /// A token with control characters.
    #[error("the token cannot hold control characters")]
    TokenControl,
    /// A token beyond [`MAX_TOKEN_LEN`].
    #[error("at most {MAX_TOKEN_LEN} bytes")]
    TokenTooLong,
    /// The start offset.
    #[error("write HH:MM:SS from 00:00:00 to 23:59:59 (whole seconds)")]
    Offset,
    /// A mapped address with pattern characters.
    #[error("{0:?} is a pattern: map plain addresses, like /cue/intro")]
    Pattern(String),
    /// A mapped address that is not OSC.
    #[error("an OSC address starts with / and has no spaces or # , ? * [ ] {{ }}")]
    NotOsc,
    /// Not a whole number.
    #[error("{what} must be a whole number")]
    NotANumber {
        /// Which field.
        what: &'static str,
    },
    /// A number out of its range.
    #[error("{what} is {min}-{max}")]
    OutOfRange {
        /// Which field.
        what: &'static str,
        /// Smallest allowed.
        min: u32,
        /// Largest allowed.
        max: u32,
    },
    /// The cue to learn from was cut short.
    #[error("that address is longer than {MAX_PATTERN_LEN} bytes")]
    TooLong,
}

/// The longest token, in bytes.
pub const MAX_TOKEN_LEN: usize = 128;

/// `IP:PORT` with IPv6 in brackets, port 1–65535, with a reason for each way it can be wrong.
pub fn parse_socket_addr(text: &str) -> Result<SocketAddr, FieldError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(FieldError::Empty);
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return if addr.port() == 0 { Err(FieldError::PortZero) } else { Ok(addr) };
    }
    if let Ok(ip) = text.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        return Err(match ip {
            // `::1:5006` is an IPv6 address too: only brackets say where the port starts.
            IpAddr::V6(_) if !text.starts_with('[') => FieldError::Ipv6Brackets,
            IpAddr::V6(ip) => FieldError::NoPort(format!("[{ip}]")),
            IpAddr::V4(ip) => FieldError::NoPort(ip.to_string()),
        });
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(if looks_like_name(text) { FieldError::HostName(text.into()) } else { FieldError::NotAnAddress });
    };
    if host.contains(':') && !host.starts_with('[') {
        return Err(FieldError::Ipv6Brackets);
    }
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FieldError::NotAnAddress);
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.parse::<IpAddr>().is_ok() {
        // The host is fine, so the port is what failed: too big.
        return Err(FieldError::PortRange(port.trim_start_matches('0').into()));
    }
    Err(if looks_like_name(host) { FieldError::HostName(host.into()) } else { FieldError::NotAnAddress })
}

/// `localhost`, `stage-pc.local`: a name, not an address.
fn looks_like_name(text: &str) -> bool {
    !text.is_empty()
        && text.bytes().any(|b| b.is_ascii_alphabetic())
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// A timecode target: an address not already among `targets` (but for the one at `editing`).
pub fn parse_target(text: &str, targets: &[SocketAddr], editing: Option<usize>) -> Result<SocketAddr, FieldError> {
    let addr = parse_socket_addr(text)?;
    refuse_duplicate(targets, editing, |t| *t == addr, || addr.to_string())?;
    Ok(addr)
}

/// The cue input's listen address.
pub fn parse_listen(text: &str) -> Result<SocketAddr, FieldError> {
    parse_socket_addr(text)
}

/// An allow-list entry not already in `allow` (but for the one at `editing`).
pub fn parse_allow(text: &str, allow: &[AllowEntry], editing: Option<usize>) -> Result<AllowEntry, FieldError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(FieldError::Empty);
    }
    if let Some((ip, prefix)) = text.split_once('/')
        && let (Ok(ip), Ok(bits)) = (ip.parse::<IpAddr>(), prefix.parse::<u32>())
    {
        let (family, max) = if ip.is_ipv4() { ("IPv4", 32) } else { ("IPv6", 128) };
        if bits > u32::from(max) {
            return Err(FieldError::PrefixTooLong { prefix: prefix.into(), family, max });
        }
    }
    let entry = AllowEntry(parse_allow_entry(text).map_err(|_| FieldError::NotARange)?);
    refuse_duplicate(allow, editing, |e| *e == entry, || entry.0.to_string())?;
    Ok(entry)
}

/// The token: empty is none; otherwise no spaces at its ends, no control characters, at most
/// [`MAX_TOKEN_LEN`] bytes.
pub fn parse_token(text: &str) -> Result<Option<String>, FieldError> {
    if text.is_empty() {
        return Ok(None);
    }
    if text.trim() != text {
        return Err(FieldError::TokenSpaces);
    }
    if text.chars().any(char::is_control) {
        return Err(FieldError::TokenControl);
    }
    if text.len() > MAX_TOKEN_LEN {
        return Err(FieldError::TokenTooLong);
    }
    Ok(Some(text.into()))
}

/// The start offset as the Start Offset parameter takes it, whole seconds.
pub fn parse_offset(text: &str) -> Result<i32, FieldError> {
    crate::params::parse_offset(text).ok_or(FieldError::Offset)
}

/// A plain OSC address for the mapping table.
pub fn parse_mapped_address(text: &str) -> Result<PlainAddress, FieldError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(FieldError::Empty);
    }
    if text.len() > MAX_PATTERN_LEN {
        return Err(FieldError::TooLong);
    }
    if pattern::is_pattern(text) {
        return Err(FieldError::Pattern(text.into()));
    }
    PlainAddress::try_from(text.to_owned()).map_err(|_| FieldError::NotOsc)
}

/// Refuses a value that `list` already holds (at a place other than `editing`), by its text.
fn refuse_duplicate<T>(
    list: &[T],
    editing: Option<usize>,
    same: impl Fn(&T) -> bool,
    shown: impl FnOnce() -> String,
) -> Result<(), FieldError> {
    if list.iter().enumerate().any(|(i, t)| Some(i) != editing && same(t)) {
        return Err(FieldError::Duplicate(shown()));
    }
    Ok(())
}

/// A whole number `min..=max` for the field `what`.
fn parse_number(text: &str, what: &'static str, min: u32, max: u32) -> Result<u32, FieldError> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FieldError::NotANumber { what });
    }
    match text.parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(FieldError::OutOfRange { what, min, max }),
    }
}

// ---------------------------------------------------------------------------------------------
// Table edits.

/// One change to a list of settings.
#[derive(Debug, Clone, PartialEq)]
pub enum ListEdit<T> {
    /// Append.
    Add(T),
    /// Replace the entry at the index.
    Replace(usize, T),
    /// Remove the entry at the index.
    Remove(usize),
}

/// Why a list edit was not applied: the list changed under the window (a project load).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("row {0} is no longer there")]
pub struct StaleRow(pub usize);

impl<T> ListEdit<T> {
    /// Applies the edit to `list`.
    pub fn apply(self, list: &mut Vec<T>) -> Result<(), StaleRow> {
        match self {
            Self::Add(value) => list.push(value),
            Self::Replace(i, value) => *list.get_mut(i).ok_or(StaleRow(i))? = value,
            Self::Remove(i) if i < list.len() => {
                list.remove(i);
            }
            Self::Remove(i) => return Err(StaleRow(i)),
        }
        Ok(())
    }
}

/// One change to the settings that the window makes.
#[derive(Debug, Clone, PartialEq)]
pub enum SettingsEdit {
    /// The timecode targets.
    Targets(ListEdit<SocketAddr>),
    /// The cue input's listen address.
    Listen(SocketAddr),
    /// The cue input on or off.
    CueEnabled(bool),
    /// The allow-list.
    Allow(ListEdit<AllowEntry>),
    /// The token (`None`: no token).
    Token(Option<String>),
    /// The named cue mappings.
    Map(ListEdit<Mapping>),
}

impl SettingsEdit {
    /// Applies the edit to `settings`.
    pub fn apply(self, settings: &mut Settings) -> Result<(), StaleRow> {
        let cues = &mut settings.cues;
        match self {
            Self::Targets(edit) => edit.apply(&mut settings.targets)?,
            Self::Listen(addr) => cues.listen = addr,
            Self::CueEnabled(on) => cues.enabled = on,
            Self::Allow(edit) => edit.apply(&mut cues.allow)?,
            Self::Token(token) => cues.token = token,
            Self::Map(edit) => edit.apply(&mut cues.map)?,
        }
        Ok(())
    }
}

/// One text field bound to a value: it shows the value until the user types, then keeps the
/// text (and why it was refused) until it is taken or reverted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Field {
    /// What the field shows.
    pub text: String,
    /// Why `text` was refused.
    pub error: Option<FieldError>,
    /// The user typed since the value was last shown.
    pub dirty: bool,
}

impl Field {
    /// Shows `current` unless the user is typing.
    pub fn follow(&mut self, current: impl FnOnce() -> String) {
        if !self.dirty {
            self.text = current();
            self.error = None;
        }
    }

    /// The user typed.
    pub fn edited(&mut self) {
        self.dirty = true;
    }

    /// Enter or "apply": the value if `parse` takes the text, else the reason is kept.
    pub fn commit<T>(&mut self, parse: impl FnOnce(&str) -> Result<T, FieldError>) -> Option<T> {
        match parse(&self.text) {
            Ok(value) => {
                self.revert();
                Some(value)
            }
            Err(e) => {
                self.error = Some(e);
                None
            }
        }
    }

    /// Escape: back to showing the value.
    pub fn revert(&mut self) {
        self.dirty = false;
        self.error = None;
    }
}

/// A list of addresses edited as text: the "add" field, and at most one row being edited, each
/// with the reason its text was refused.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TextList {
    /// The "add" field.
    pub adding: String,
    /// Why `adding` was refused.
    pub add_error: Option<FieldError>,
    /// The row being edited, its text and why that was refused.
    pub editing: Option<(usize, String, Option<FieldError>)>,
}

impl TextList {
    /// The "add" button: the edit if `parse` takes the text (which is then cleared), else the
    /// reason is kept for display.
    pub fn commit_add<T>(&mut self, parse: impl FnOnce(&str) -> Result<T, FieldError>) -> Option<ListEdit<T>> {
        match parse(&self.adding) {
            Ok(value) => {
                self.adding.clear();
                self.add_error = None;
                Some(ListEdit::Add(value))
            }
            Err(e) => {
                self.add_error = Some(e);
                None
            }
        }
    }

    /// Starts editing row `i`, showing `text`.
    pub fn start_edit(&mut self, i: usize, text: String) {
        self.editing = Some((i, text, None));
    }

    /// The "save" button of the row being edited: `parse(text, row)` decides.
    pub fn commit_edit<T>(&mut self, parse: impl FnOnce(&str, usize) -> Result<T, FieldError>) -> Option<ListEdit<T>> {
        let (i, text, error) = self.editing.as_mut()?;
        match parse(text, *i) {
            Ok(value) => {
                let i = *i;
                self.editing = None;
                Some(ListEdit::Replace(i, value))
            }
            Err(e) => {
                *error = Some(e);
                None
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The mapping table.

/// The MIDI event kinds a mapping can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Note on (and off after a length).
    Note,
    /// Note off.
    NoteOff,
    /// Control change.
    Cc,
    /// Program change.
    Program,
}

impl Kind {
    /// Every kind, in menu order.
    pub const ALL: [Self; 4] = [Self::Note, Self::NoteOff, Self::Cc, Self::Program];

    /// The menu text.
    pub fn label(self) -> &'static str {
        match self {
            Self::Note => "note",
            Self::NoteOff => "note off",
            Self::Cc => "CC",
            Self::Program => "program",
        }
    }

    /// What the number field means.
    pub fn number_label(self) -> &'static str {
        match self {
            Self::Note | Self::NoteOff => "key",
            Self::Cc => "controller",
            Self::Program => "program",
        }
    }

    /// What the value field means, if this kind has one.
    pub fn value_label(self) -> Option<&'static str> {
        match self {
            Self::Note => Some("velocity"),
            Self::Cc => Some("value"),
            Self::NoteOff | Self::Program => None,
        }
    }

    /// Whether this kind has a length.
    pub fn has_length(self) -> bool {
        self == Self::Note
    }
}

/// The fields of a mapping row being added or edited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MappingField {
    /// The OSC address.
    Address,
    /// MIDI channel.
    Channel,
    /// Key, controller or program.
    Number,
    /// Velocity or value.
    Value,
    /// Note length.
    Length,
}

/// The refused fields of a mapping row, each with its reason.
pub type MappingErrors = Vec<(MappingField, FieldError)>;

/// A mapping row as text, while it is typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingDraft {
    /// The OSC address.
    pub address: String,
    /// The event kind.
    pub kind: Kind,
    /// Channel 1–16.
    pub channel: String,
    /// Key, controller or program 0–127.
    pub number: String,
    /// Velocity or value 0–127 (notes and CCs).
    pub value: String,
    /// Note length in ms (notes); 0 holds the note.
    pub length_ms: String,
}

/// The longest note length the window takes, ms (ten minutes).
pub const MAX_LENGTH_MS: u32 = 600_000;

impl Default for MappingDraft {
    fn default() -> Self {
        Self {
            address: String::new(),
            kind: Kind::Note,
            channel: "1".into(),
            number: "60".into(),
            value: "127".into(),
            length_ms: "100".into(),
        }
    }
}

impl MappingDraft {
    /// The draft showing `mapping`.
    pub fn from_mapping(mapping: &Mapping) -> Self {
        let text = |n: u8| n.to_string();
        let base = Self { address: mapping.address.as_str().into(), ..Self::default() };
        match mapping.action {
            MidiAction::Note { channel, key, velocity, length_ms } => Self {
                kind: Kind::Note,
                channel: text(channel.into()),
                number: text(key.get()),
                value: text(velocity.get()),
                length_ms: length_ms.to_string(),
                ..base
            },
            MidiAction::NoteOff { channel, key } => {
                Self { kind: Kind::NoteOff, channel: text(channel.into()), number: text(key.get()), ..base }
            }
            MidiAction::Cc { channel, number, value } => Self {
                kind: Kind::Cc,
                channel: text(channel.into()),
                number: text(number.get()),
                value: text(value.get()),
                ..base
            },
            MidiAction::Program { channel, program } => {
                Self { kind: Kind::Program, channel: text(channel.into()), number: text(program.get()), ..base }
            }
        }
    }

    /// The mapping, if every field is valid and the address is not mapped already (but by the
    /// row at `editing`); else every refused field with its reason.
    pub fn to_mapping(&self, map: &[Mapping], editing: Option<usize>) -> Result<Mapping, MappingErrors> {
        let mut errors = Vec::new();
        let mut check = |field, result: Result<u32, FieldError>| {
            result.map_err(|e| errors.push((field, e))).ok().and_then(|n| u8::try_from(n).ok())
        };
        let kind = self.kind;
        let channel = check(MappingField::Channel, parse_number(&self.channel, "the channel", 1, 16));
        let number = check(MappingField::Number, parse_number(&self.number, kind.number_label(), 0, 127));
        let value = match kind.value_label() {
            Some(what) => check(MappingField::Value, parse_number(&self.value, what, 0, 127)),
            None => Some(0),
        };
        let length_ms = if kind.has_length() {
            parse_number(&self.length_ms, "the length (ms)", 0, MAX_LENGTH_MS)
                .map_err(|e| errors.push((MappingField::Length, e)))
                .ok()
        } else {
            Some(0)
        };
        let address = parse_mapped_address(&self.address)
            .and_then(|a| refuse_duplicate(map, editing, |m| m.address == a, || a.as_str().into()).map(|()| a))
            .map_err(|e| errors.push((MappingField::Address, e)))
            .ok();
        let (Some(address), Some(channel), Some(n), Some(v), Some(length_ms)) =
            (address, channel, number, value, length_ms)
        else {
            return Err(errors);
        };
        // The numbers were range-checked above, so these conversions cannot fail.
        let (Ok(channel), Some(n), Some(v)) = (Channel::try_from(channel), U7::new(n), U7::new(v)) else {
            return Err(errors);
        };
        let action = match kind {
            Kind::Note => MidiAction::Note { channel, key: n, velocity: v, length_ms },
            Kind::NoteOff => MidiAction::NoteOff { channel, key: n },
            Kind::Cc => MidiAction::Cc { channel, number: n, value: v },
            Kind::Program => MidiAction::Program { channel, program: n },
        };
        Ok(Mapping { address, action })
    }
}

/// "Learn from the next incoming address": waits for a cue numbered above `after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Learn {
    /// The latest cue number when learning started.
    pub after: u64,
}

impl Learn {
    /// The address to take from `recent` (newest first, as [`crate::readout::CueActivity::recent`]
    /// gives them): the first cue after learning started. `None` while none came.
    pub fn take(&self, recent: &[RecentCue]) -> Option<Result<String, FieldError>> {
        let cue = recent.iter().filter(|c| c.number > self.after).min_by_key(|c| c.number)?;
        if cue.address.truncated() {
            return Some(Err(FieldError::TooLong));
        }
        Some(parse_mapped_address(cue.address.as_str()).map(String::from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readout::ShortText;
    use osc_timecode_core::cue::MAX_FANOUT;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
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

    fn snapshot(active: bool, offline: bool, playing: Option<bool>, has_position: bool) -> ReadoutSnapshot {
        ReadoutSnapshot {
            position: playing.map(|playing| Position { frame: 0, rate: FrameRate::FPS_25, playing }),
            blocks: 1,
            has_position,
            active,
            offline,
            sample_rate: 48_000,
            host_rate: None,
            refused_rate: None,
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
            format_midi(&MidiAction::Note { channel: ch, key: u(60), velocity: u(100), length_ms: 250 }),
            "note 60 vel 100, 250 ms · ch 2"
        );
        assert_eq!(
            format_midi(&MidiAction::Note { channel: ch, key: u(60), velocity: u(100), length_ms: 0 }),
            "note 60 vel 100, held · ch 2"
        );
        assert_eq!(format_midi(&MidiAction::NoteOff { channel: ch, key: u(1) }), "note off 1 · ch 2");
        assert_eq!(format_midi(&MidiAction::Cc { channel: ch, number: u(7), value: u(64) }), "CC 7 = 64 · ch 2");
        assert_eq!(format_midi(&MidiAction::Program { channel: ch, program: u(12) }), "program 12 · ch 2");
        assert_eq!(drop_reason_text(DropReason::NotAllowed), "not allowed");
        assert_eq!(drop_reason_text(DropReason::TooFarAhead), "too far ahead");
    }

    fn recent(number: u64, address: &str, status: AckStatus, action: Option<MidiAction>) -> RecentCue {
        let mut actions = [None; MAX_FANOUT];
        actions[0] = action;
        RecentCue {
            number,
            at: Instant::now(),
            from: addr("127.0.0.1:9"),
            address: ShortText::new(address),
            timetagged: false,
            status,
            actions,
        }
    }

    #[test]
    fn outcomes_say_what_a_cue_became() {
        let program = MidiAction::Program { channel: Channel::ONE, program: U7::MAX };
        assert_eq!(format_outcome(&recent(1, "/a", AckStatus::Ok, Some(program))), "program 127 · ch 1");
        assert_eq!(format_outcome(&recent(1, "/a", AckStatus::Unmapped, None)), "unmapped");
        assert_eq!(
            format_outcome(&recent(1, "/a", AckStatus::QueueFull, Some(program))),
            "queue full: program 127 · ch 1"
        );
    }

    #[test]
    fn socket_addresses_are_refused_with_a_reason() {
        assert_eq!(parse_socket_addr(" 127.0.0.1:5006 "), Ok(addr("127.0.0.1:5006")));
        assert_eq!(parse_socket_addr("[::1]:5006"), Ok(addr("[::1]:5006")));
        assert_eq!(parse_socket_addr("0.0.0.0:5005"), Ok(addr("0.0.0.0:5005")));
        for (text, want) in [
            ("", FieldError::Empty),
            ("   ", FieldError::Empty),
            ("127.0.0.1", FieldError::NoPort("127.0.0.1".into())),
            ("::1", FieldError::Ipv6Brackets),
            ("[::1]", FieldError::NoPort("[::1]".into())),
            ("127.0.0.1:0", FieldError::PortZero),
            ("127.0.0.1:65536", FieldError::PortRange("65536".into())),
            ("127.0.0.1:99999999999", FieldError::PortRange("99999999999".into())),
            ("[::1]:70000", FieldError::PortRange("70000".into())),
            ("::1:5006", FieldError::Ipv6Brackets),
            ("localhost:5006", FieldError::HostName("localhost".into())),
            ("stage-pc.local:5006", FieldError::HostName("stage-pc.local".into())),
            ("localhost", FieldError::HostName("localhost".into())),
            ("127.0.0.1:abc", FieldError::NotAnAddress),
            ("127.0.0.1:", FieldError::NotAnAddress),
            ("256.0.0.1:5006", FieldError::NotAnAddress),
            ("127.0.0.1:-1", FieldError::NotAnAddress),
            ("hello world:1", FieldError::NotAnAddress),
        ] {
            assert_eq!(parse_socket_addr(text), Err(want), "{text:?}");
        }
        assert_eq!(FieldError::PortRange("70000".into()).to_string(), "port 70000 is out of range (1-65535)");
        assert!(FieldError::HostName("localhost".into()).to_string().contains("IP address"));
    }

    #[test]
    fn targets_and_allow_entries_refuse_duplicates_except_the_row_being_edited() {
        let targets = [addr("127.0.0.1:5006"), addr("[::1]:5006")];
        assert_eq!(parse_target("127.0.0.1:5006", &targets, None), Err(FieldError::Duplicate("127.0.0.1:5006".into())));
        assert_eq!(parse_target("127.0.0.1:5006", &targets, Some(0)), Ok(targets[0]));
        assert!(parse_target("127.0.0.1:5006", &targets, Some(1)).is_err());
        assert_eq!(parse_target("10.0.0.5:9000", &targets, None), Ok(addr("10.0.0.5:9000")));

        let allow = [AllowEntry(parse_allow_entry("127.0.0.0/8").unwrap())];
        assert_eq!(parse_allow("10.0.0.0/8", &allow, None).unwrap().0.to_string(), "10.0.0.0/8");
        assert_eq!(parse_allow("192.168.1.20", &allow, None).unwrap().0.to_string(), "192.168.1.20/32");
        assert_eq!(parse_allow("::1", &allow, None).unwrap().0.to_string(), "::1/128");
        assert_eq!(parse_allow(" 127.0.0.0/8", &allow, None), Err(FieldError::Duplicate("127.0.0.0/8".into())));
        assert!(parse_allow("127.0.0.0/8", &allow, Some(0)).is_ok());
        for (text, want) in [
            ("", FieldError::Empty),
            ("10.0.0.0/33", FieldError::PrefixTooLong { prefix: "33".into(), family: "IPv4", max: 32 }),
            ("::/129", FieldError::PrefixTooLong { prefix: "129".into(), family: "IPv6", max: 128 }),
            ("10.0.0.0/x", FieldError::NotARange),
            ("stage-pc", FieldError::NotARange),
            ("10.0.0", FieldError::NotARange),
        ] {
            assert_eq!(parse_allow(text, &allow, None), Err(want), "{text:?}");
        }
        assert_eq!(
            FieldError::PrefixTooLong { prefix: "33".into(), family: "IPv4", max: 32 }.to_string(),
            "/33 is longer than an IPv4 address (at most /32)"
        );
    }

    #[test]
    fn tokens_offsets_and_addresses_are_checked() {
        assert_eq!(parse_token(""), Ok(None));
        assert_eq!(parse_token("s3cret"), Ok(Some("s3cret".into())));
        assert_eq!(parse_token("two words"), Ok(Some("two words".into())));
        assert_eq!(parse_token(" s3cret"), Err(FieldError::TokenSpaces));
        assert_eq!(parse_token("s3cret\n"), Err(FieldError::TokenSpaces));
        assert_eq!(parse_token("a\u{7}b"), Err(FieldError::TokenControl));
        assert_eq!(parse_token(&"x".repeat(MAX_TOKEN_LEN)), Ok(Some("x".repeat(MAX_TOKEN_LEN))));
        assert_eq!(parse_token(&"x".repeat(MAX_TOKEN_LEN + 1)), Err(FieldError::TokenTooLong));

        assert_eq!(parse_offset("01:00:00"), Ok(3600));
        assert_eq!(parse_offset("10:00:00:00"), Ok(36_000));
        assert_eq!(parse_offset("24:00:00"), Err(FieldError::Offset));
        assert_eq!(parse_offset("1:00"), Err(FieldError::Offset));

        assert_eq!(parse_mapped_address(" /cue/intro ").unwrap().as_str(), "/cue/intro");
        assert_eq!(parse_mapped_address("/cue/*"), Err(FieldError::Pattern("/cue/*".into())));
        assert_eq!(parse_mapped_address("/cue/{a,b}"), Err(FieldError::Pattern("/cue/{a,b}".into())));
        assert_eq!(parse_mapped_address("cue/intro"), Err(FieldError::NotOsc));
        assert_eq!(parse_mapped_address("/cue/in tro"), Err(FieldError::NotOsc));
        assert_eq!(parse_mapped_address(""), Err(FieldError::Empty));
        assert_eq!(parse_mapped_address(&format!("/{}", "a".repeat(MAX_PATTERN_LEN))), Err(FieldError::TooLong));
    }

    #[test]
    fn list_edits_add_replace_and_remove_and_refuse_stale_rows() {
        let mut list = vec![1, 2, 3];
        ListEdit::Add(4).apply(&mut list).unwrap();
        ListEdit::Replace(0, 9).apply(&mut list).unwrap();
        ListEdit::Remove(1).apply(&mut list).unwrap();
        assert_eq!(list, [9, 3, 4]);
        assert_eq!(ListEdit::Remove(3).apply(&mut list), Err(StaleRow(3)));
        assert_eq!(ListEdit::Replace(5, 0).apply(&mut list), Err(StaleRow(5)));
        assert_eq!(list, [9, 3, 4]);
    }

    #[test]
    fn settings_edits_reach_their_field() {
        let mut s = Settings::default();
        let a = addr("10.0.0.5:9000");
        SettingsEdit::Targets(ListEdit::Add(a)).apply(&mut s).unwrap();
        assert_eq!(s.targets, [crate::settings::DEFAULT_TARGET, a]);
        SettingsEdit::Targets(ListEdit::Remove(0)).apply(&mut s).unwrap();
        assert_eq!(s.targets, [a]);
        SettingsEdit::Listen(addr("0.0.0.0:7000")).apply(&mut s).unwrap();
        assert_eq!(s.cues.listen, addr("0.0.0.0:7000"));
        SettingsEdit::CueEnabled(false).apply(&mut s).unwrap();
        assert!(!s.cues.enabled);
        let entry = AllowEntry(parse_allow_entry("10.0.0.0/8").unwrap());
        SettingsEdit::Allow(ListEdit::Replace(0, entry)).apply(&mut s).unwrap();
        assert_eq!(s.cues.allow[0], entry);
        SettingsEdit::Token(Some("t".into())).apply(&mut s).unwrap();
        assert_eq!(s.cues.token(), Some("t"));
        let m = MappingDraft { address: "/cue/go".into(), ..MappingDraft::default() }.to_mapping(&[], None).unwrap();
        SettingsEdit::Map(ListEdit::Add(m.clone())).apply(&mut s).unwrap();
        assert_eq!(s.cues.map, [m]);
        assert_eq!(SettingsEdit::Map(ListEdit::Remove(1)).apply(&mut s), Err(StaleRow(1)));
        // What the window saves survives the project state round trip.
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(Settings::from_state(&json).unwrap(), s);
    }

    #[test]
    fn fields_follow_the_value_until_typed_in() {
        let mut f = Field::default();
        f.follow(|| "00:00:00:00".into());
        assert_eq!(f.text, "00:00:00:00");
        f.text = "25:00:00".into();
        f.edited();
        f.follow(|| "00:00:00:00".into());
        assert_eq!(f.text, "25:00:00", "typing is not overwritten");
        assert_eq!(f.commit(parse_offset), None);
        assert_eq!(f.error, Some(FieldError::Offset));
        f.text = "01:00:00".into();
        assert_eq!(f.commit(parse_offset), Some(3600));
        assert_eq!((f.dirty, f.error.clone()), (false, None));
        f.follow(|| "01:00:00:00".into());
        assert_eq!(f.text, "01:00:00:00");
        f.text = "junk".into();
        f.edited();
        f.revert();
        f.follow(|| "01:00:00:00".into());
        assert_eq!(f.text, "01:00:00:00");
    }

    #[test]
    fn text_lists_keep_the_reason_until_the_text_is_taken() {
        let targets = vec![addr("127.0.0.1:5006")];
        let mut list = TextList { adding: "127.0.0.1:70000".into(), ..TextList::default() };
        assert_eq!(list.commit_add(|t| parse_target(t, &targets, None)), None);
        assert_eq!(list.add_error, Some(FieldError::PortRange("70000".into())));
        assert_eq!(list.adding, "127.0.0.1:70000", "the text stays for fixing");
        list.adding = "127.0.0.1:7000".into();
        assert_eq!(list.commit_add(|t| parse_target(t, &targets, None)), Some(ListEdit::Add(addr("127.0.0.1:7000"))));
        assert_eq!((list.adding.as_str(), list.add_error.clone()), ("", None));

        assert_eq!(list.commit_edit(|t, i| parse_target(t, &targets, Some(i))), None, "nothing being edited");
        list.start_edit(0, "127.0.0.1:5006".into());
        list.editing.as_mut().unwrap().1 = "localhost:1".into();
        assert_eq!(list.commit_edit(|t, i| parse_target(t, &targets, Some(i))), None);
        assert_eq!(list.editing.as_ref().unwrap().2, Some(FieldError::HostName("localhost".into())));
        list.editing.as_mut().unwrap().1 = "127.0.0.1:5007".into();
        assert_eq!(
            list.commit_edit(|t, i| parse_target(t, &targets, Some(i))),
            Some(ListEdit::Replace(0, addr("127.0.0.1:5007")))
        );
        assert_eq!(list.editing, None);
    }

    #[test]
    fn mapping_drafts_round_trip_and_refuse_each_bad_field() {
        let draft = |address: &str, kind, channel: &str, number: &str, value: &str, length: &str| MappingDraft {
            address: address.into(),
            kind,
            channel: channel.into(),
            number: number.into(),
            value: value.into(),
            length_ms: length.into(),
        };
        for d in [
            draft("/cue/intro", Kind::Note, "2", "60", "100", "250"),
            draft("/cue/hold", Kind::Note, "16", "0", "0", "0"),
            draft("/x/off", Kind::NoteOff, "1", "127", "127", "100"),
            draft("/x/cc", Kind::Cc, "3", "7", "64", "100"),
            draft("/cue/blackout", Kind::Program, "1", "12", "127", "100"),
        ] {
            let m = d.to_mapping(&[], None).unwrap_or_else(|e| panic!("{d:?}: {e:?}"));
            let back = MappingDraft::from_mapping(&m);
            assert_eq!(back.to_mapping(&[], None).unwrap(), m);
            assert_eq!((back.address.as_str(), back.kind), (d.address.as_str(), d.kind));
        }
        let bad = draft("/cue/*", Kind::Note, "17", "128", "x", "-1").to_mapping(&[], None).unwrap_err();
        let fields: Vec<MappingField> = bad.iter().map(|(f, _)| *f).collect();
        assert_eq!(
            fields,
            [
                MappingField::Channel,
                MappingField::Number,
                MappingField::Value,
                MappingField::Length,
                MappingField::Address
            ]
        );
        let reasons: Vec<String> = bad.iter().map(|(_, e)| e.to_string()).collect();
        assert_eq!(reasons[0], "the channel is 1-16");
        assert_eq!(reasons[1], "key is 0-127");
        assert_eq!(reasons[2], "velocity must be a whole number");
        // Fields a kind does not use are not checked.
        assert!(draft("/p", Kind::Program, "1", "5", "junk", "junk").to_mapping(&[], None).is_ok());
        assert!(
            draft("/n", Kind::Note, "1", "5", "1", &(MAX_LENGTH_MS + 1).to_string()).to_mapping(&[], None).is_err()
        );
        // One address, one mapping.
        let existing = vec![draft("/cue/go", Kind::Note, "1", "1", "1", "1").to_mapping(&[], None).unwrap()];
        let again = draft("/cue/go", Kind::Cc, "1", "1", "1", "1");
        assert_eq!(
            again.to_mapping(&existing, None).unwrap_err(),
            [(MappingField::Address, FieldError::Duplicate("/cue/go".into()))]
        );
        assert!(again.to_mapping(&existing, Some(0)).is_ok(), "editing the row itself");
    }

    #[test]
    fn learn_takes_the_first_plain_address_after_it_started() {
        let learn = Learn { after: 5 };
        assert_eq!(learn.take(&[]), None);
        let old = recent(5, "/cue/old", AckStatus::Ok, None);
        assert_eq!(learn.take(&[old]), None, "cues from before do not count");
        let first = recent(6, "/show/intro", AckStatus::Unmapped, None);
        let second = recent(7, "/show/outro", AckStatus::Unmapped, None);
        assert_eq!(learn.take(&[second, first, old]), Some(Ok("/show/intro".into())));
        let pattern = recent(6, "/show/*", AckStatus::TooBroad, None);
        assert_eq!(learn.take(&[pattern]), Some(Err(FieldError::Pattern("/show/*".into()))));
        let long = recent(6, &format!("/{}", "a".repeat(400)), AckStatus::Unmapped, None);
        assert_eq!(learn.take(&[long]), Some(Err(FieldError::TooLong)));
    }
}
