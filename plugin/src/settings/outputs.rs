//! The settings of the outputs show equipment reads (issue 16): LTC into the audio output, MTC
//! through the MIDI output, Art-Net ArtTimeCode to a list of targets, and `half_rate` (50, 59.94
//! and 60 fps as frame pairs on all three).
//!
//! Every value is a type with one check, like those of [`super::values`]: the config file
//! (`[plugin.ltc]`, `[plugin.artnet]`, `[plugin.mtc]`, `half_rate` in `[plugin]`), a project's
//! saved state and the window refuse the same inputs with the same message. All three outputs
//! are off by default: a new instance sends only what it sent before.
//!
//! The audio thread cannot read [`super::Settings`] (a lock): [`AudioOutputs`] is the `Copy` part
//! it needs, packed into one `u64` ([`AudioOutputs::pack`]) that the `[main-thread]` stores in
//! an atomic and the `[audio-thread]` loads each block.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::str::FromStr;

use osc_timecode_core::FrameRate;
use osc_timecode_core::carriage::{Carriage, NotCarried};
use serde::{Deserialize, Deserializer, Serialize};

use super::values::{AddressError, Duplicate, StreamId, Unique, UniqueList, parse_socket_addr, text_form};

// The LTC level's range and default are the LTC format's facts, shared with the client's
// `--ltc-level-dbfs`: owned by `osc_timecode_core::ltc`.
pub use osc_timecode_core::ltc::{
    DEFAULT_LEVEL_DBFS as DEFAULT_LTC_LEVEL_DBFS, MAX_LEVEL_DBFS as MAX_LTC_LEVEL_DBFS,
    MIN_LEVEL_DBFS as MIN_LTC_LEVEL_DBFS,
};

/// The most Art-Net targets: as many as the network thread counts one by one
/// ([`crate::network::TARGET_SLOTS`]), so the window shows each one's sent and refused packets,
/// and the work per frame stays bounded.
pub const MAX_ARTNET_TARGETS: usize = crate::network::TARGET_SLOTS;

/// Which audio output channel LTC replaces. `Copy`: the audio thread reads it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LtcChannel {
    /// No LTC (default): the audio passes through.
    #[default]
    Off,
    /// LTC replaces the left channel.
    Left,
    /// LTC replaces the right channel.
    Right,
    /// LTC replaces both channels.
    Both,
}

impl LtcChannel {
    /// Every choice, in the window's order.
    pub const ALL: [Self; 4] = [Self::Off, Self::Left, Self::Right, Self::Both];

    /// The name in files (`"off"`, `"left"`, …) and in the window.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Left => "left",
            Self::Right => "right",
            Self::Both => "both",
        }
    }

    /// Whether LTC goes out at all.
    pub const fn is_on(self) -> bool {
        !matches!(self, Self::Off)
    }

    /// Whether LTC replaces the left (first) channel.
    pub const fn left(self) -> bool {
        matches!(self, Self::Left | Self::Both)
    }

    /// Whether LTC replaces the right (second) channel.
    pub const fn right(self) -> bool {
        matches!(self, Self::Right | Self::Both)
    }

    /// 0–3, for [`AudioOutputs::pack`].
    const fn bits(self) -> u64 {
        match self {
            Self::Off => 0,
            Self::Left => 1,
            Self::Right => 2,
            Self::Both => 3,
        }
    }

    /// The channel of [`Self::bits`]' two low bits (every value is one).
    const fn from_bits(bits: u64) -> Self {
        match bits & 0b11 {
            0 => Self::Off,
            1 => Self::Left,
            2 => Self::Right,
            _ => Self::Both,
        }
    }
}

/// What LTC does while the transport is stopped. `Copy`: the audio thread reads it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LtcStopped {
    /// Silence on the LTC channel (default): readers see the code stop.
    #[default]
    Silence,
    /// The parked frame's word repeated: readers keep showing the position.
    Still,
}

impl LtcStopped {
    /// Every choice, in the window's order.
    pub const ALL: [Self; 2] = [Self::Silence, Self::Still];

    /// The name in files (`"silence"`, `"still"`) and in the window.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Silence => "silence",
            Self::Still => "still",
        }
    }
}

/// Why a value is not an LTC level. One message per rule, shown by the window and quoted by
/// the config file's and a project state's errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LevelError {
    /// Not a number: text in the window, a string or a boolean in a file.
    #[error("the LTC level is a number of dBFS, -60 to 0")]
    NotANumber,
    /// A number outside the range, NaN or an infinity (as written).
    #[error("the LTC level is -60 to 0 dBFS, not {0}")]
    OutOfRange(String),
}

/// The LTC signal's peak level, dBFS: finite, from [`MIN_LTC_LEVEL_DBFS`] to
/// [`MAX_LTC_LEVEL_DBFS`]. `Copy`, an `f32`: the audio thread reads it (through
/// [`AudioOutputs`]). Written in files as the plain number.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct LtcLevel(f32);

impl LtcLevel {
    /// [`DEFAULT_LTC_LEVEL_DBFS`].
    pub const DEFAULT: Self = Self(DEFAULT_LTC_LEVEL_DBFS);
    /// [`MIN_LTC_LEVEL_DBFS`].
    pub const MIN: Self = Self(MIN_LTC_LEVEL_DBFS);
    /// [`MAX_LTC_LEVEL_DBFS`].
    pub const MAX: Self = Self(MAX_LTC_LEVEL_DBFS);

    /// `dbfs` if it is in range (never NaN or an infinity).
    pub fn new(dbfs: f32) -> Option<Self> {
        (MIN_LTC_LEVEL_DBFS..=MAX_LTC_LEVEL_DBFS).contains(&dbfs).then_some(Self(dbfs))
    }

    /// A number read from a file or the window: this level, or the range error naming it. An
    /// `f64` beyond `f32` is out of range, never rounded into it.
    fn checked(dbfs: f64) -> Result<Self, LevelError> {
        let in_range = (f64::from(MIN_LTC_LEVEL_DBFS)..=f64::from(MAX_LTC_LEVEL_DBFS)).contains(&dbfs);
        // In range, the f32 nearest `dbfs` is in range too (both ends are f32 values).
        #[allow(clippy::cast_possible_truncation, reason = "in range, the nearest f32 is wanted")]
        let level = in_range.then(|| Self::new(dbfs as f32)).flatten();
        level.ok_or_else(|| LevelError::OutOfRange(format!("{dbfs:?}")))
    }

    /// The level, dBFS.
    pub const fn dbfs(self) -> f32 {
        self.0
    }
}

impl Default for LtcLevel {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl FromStr for LtcLevel {
    type Err = LevelError;
    /// A field's text: surrounding whitespace ignored, a decimal number (`-18`, `-20.5`); `dB`
    /// or `dBFS` after it is taken too, as the window shows it.
    fn from_str(text: &str) -> Result<Self, LevelError> {
        let text = text.trim();
        let number = text.strip_suffix("dBFS").or_else(|| text.strip_suffix("dB")).unwrap_or(text).trim_end();
        // Rust reads "nan", "inf" and "infinity" as numbers: they are out of range. The message
        // shows the number as typed.
        let dbfs = number.parse::<f64>().map_err(|_| LevelError::NotANumber)?;
        Self::checked(dbfs).map_err(|_| LevelError::OutOfRange(number.to_owned()))
    }
}

impl fmt::Display for LtcLevel {
    /// The number (`-18`, `-20.5`), as the window's field shows it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for LtcLevel {
    /// As the plain number.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for LtcLevel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(LevelVisitor)
    }
}

/// Reads any number a file holds (integers too: `level_dbfs = -18`), checked by
/// [`LtcLevel::checked`]; anything else is [`LevelError::NotANumber`].
struct LevelVisitor;

impl serde::de::Visitor<'_> for LevelVisitor {
    type Value = LtcLevel;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the LTC level: a number of dBFS, -60 to 0")
    }

    fn visit_f64<E: serde::de::Error>(self, dbfs: f64) -> Result<LtcLevel, E> {
        LtcLevel::checked(dbfs).map_err(E::custom)
    }

    fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<LtcLevel, E> {
        // Exact for every integer in range; those beyond are refused, shown as written.
        let level = i32::try_from(n).ok().and_then(|n| LtcLevel::checked(n.into()).ok());
        level.ok_or_else(|| E::custom(LevelError::OutOfRange(n.to_string())))
    }

    fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<LtcLevel, E> {
        i64::try_from(n).map_or_else(|_| Err(E::custom(LevelError::OutOfRange(n.to_string()))), |n| self.visit_i64(n))
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<LtcLevel, E> {
        Err(E::custom(LevelError::NotANumber))
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<LtcLevel, E> {
        Err(E::custom(LevelError::NotANumber))
    }
}

/// Why a text is not an Art-Net target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArtNetTargetError {
    /// An IPv6 address.
    #[error("Art-Net is IPv4 only: write an IPv4 address, like 10.0.0.5 or 10.255.255.255:6454")]
    Ipv6,
    /// Not `IP` or `IP:PORT`.
    #[error("not an address like 10.0.0.5 or 10.0.0.5:6454")]
    NotAnAddress,
    /// Empty, a host name, a port out of range or 0: as for every address.
    #[error(transparent)]
    Address(AddressError),
}

/// Where ArtTimeCode goes: an IPv4 address (Art-Net is IPv4 only; names are not looked up) and
/// a port 1–65535. A bare address means Art-Net's one port, 6454
/// ([`osc_timecode_core::protocol::port::ARTNET`]); other ports are for tests and relays. A
/// broadcast address (`10.255.255.255`, `255.255.255.255`) is taken as written: broadcast only
/// when the user writes one. Written in files as `IP:PORT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ArtNetTarget(SocketAddrV4);

impl ArtNetTarget {
    /// `addr` if its port is not 0.
    pub const fn new(addr: SocketAddrV4) -> Option<Self> {
        if addr.port() == 0 { None } else { Some(Self(addr)) }
    }

    /// The address.
    pub const fn addr(self) -> SocketAddrV4 {
        self.0
    }

    /// The IP address.
    pub const fn ip(self) -> Ipv4Addr {
        *self.0.ip()
    }

    /// The port, 1–65535.
    pub const fn port(self) -> u16 {
        self.0.port()
    }
}

impl FromStr for ArtNetTarget {
    type Err = ArtNetTargetError;
    fn from_str(text: &str) -> Result<Self, ArtNetTargetError> {
        let trimmed = text.trim();
        if let Ok(ip) = trimmed.parse::<Ipv4Addr>() {
            return Ok(Self(SocketAddrV4::new(ip, osc_timecode_core::protocol::port::ARTNET)));
        }
        if trimmed.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().is_ok() {
            return Err(ArtNetTargetError::Ipv6);
        }
        match parse_socket_addr(trimmed) {
            Ok(SocketAddr::V4(addr)) => Ok(Self(addr)),
            Ok(SocketAddr::V6(_)) | Err(AddressError::Ipv6Brackets) => Err(ArtNetTargetError::Ipv6),
            // `[::1]:99999`: the host is IPv6 (only IPv6 is bracketed), whatever the port.
            Err(AddressError::PortRange(_)) if trimmed.starts_with('[') => Err(ArtNetTargetError::Ipv6),
            // Bare addresses were taken above: what has no port is not an address.
            Err(AddressError::NotAnAddress | AddressError::NoPort(_)) => Err(ArtNetTargetError::NotAnAddress),
            Err(other) => Err(ArtNetTargetError::Address(other)),
        }
    }
}

text_form!(ArtNetTarget, ArtNetTargetError, |t| t.0.to_string());

impl From<ArtNetTarget> for SocketAddr {
    fn from(t: ArtNetTarget) -> SocketAddr {
        SocketAddr::V4(t.0)
    }
}

impl fmt::Display for ArtNetTarget {
    /// `IP:PORT`, the port always written.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Unique for ArtNetTarget {
    type Key = Self;
    fn key(&self) -> &Self {
        self
    }
    fn shown(&self) -> String {
        self.to_string()
    }
}

/// Why an Art-Net target list cannot hold an entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArtNetListError {
    /// The address is in the list already.
    #[error(transparent)]
    Duplicate(#[from] Duplicate),
    /// [`MAX_ARTNET_TARGETS`] are in the list (`{0}`: how many a list was given).
    #[error("at most {MAX_ARTNET_TARGETS} Art-Net targets, not {0}")]
    TooMany(usize),
}

/// The Art-Net targets: each address once, at most [`MAX_ARTNET_TARGETS`]. Reads as the
/// [`UniqueList`] it wraps; changed only through its methods, which keep both rules. Written in
/// files as the plain list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ArtNetTargets(UniqueList<ArtNetTarget>);

impl ArtNetTargets {
    /// `targets`, or why they cannot be a list.
    pub fn new(targets: Vec<ArtNetTarget>) -> Result<Self, ArtNetListError> {
        if targets.len() > MAX_ARTNET_TARGETS {
            return Err(ArtNetListError::TooMany(targets.len()));
        }
        Ok(Self(UniqueList::new(targets)?))
    }

    /// Whether one more target may go in: refused when the list is full.
    pub fn refuse_full(&self) -> Result<(), ArtNetListError> {
        if self.0.len() >= MAX_ARTNET_TARGETS { Err(ArtNetListError::TooMany(self.0.len() + 1)) } else { Ok(()) }
    }

    /// Appends `target` unless the list is full or holds it.
    pub fn push(&mut self, target: ArtNetTarget) -> Result<(), ArtNetListError> {
        self.refuse_full()?;
        Ok(self.0.push(target)?)
    }

    /// Replaces row `i` with `target` unless another row holds it; `Ok(false)` if there is no
    /// row `i`.
    pub fn replace(&mut self, i: usize, target: ArtNetTarget) -> Result<bool, Duplicate> {
        self.0.replace(i, target)
    }

    /// Removes row `i`, if there is one.
    pub fn remove(&mut self, i: usize) -> Option<ArtNetTarget> {
        self.0.remove(i)
    }
}

impl std::ops::Deref for ArtNetTargets {
    type Target = UniqueList<ArtNetTarget>;
    fn deref(&self) -> &UniqueList<ArtNetTarget> {
        &self.0
    }
}

impl<'de> Deserialize<'de> for ArtNetTargets {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::new(Vec::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// LTC into the audio output (`[plugin.ltc]`). `[main-thread]` owns it; the audio thread sees
/// it through [`AudioOutputs`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LtcSettings {
    /// Which output channel LTC replaces; off by default.
    pub channel: LtcChannel,
    /// The signal's peak level, dBFS (default -18).
    pub level_dbfs: LtcLevel,
    /// While stopped: silence (default) or the parked frame repeated.
    pub stopped: LtcStopped,
}

/// Art-Net ArtTimeCode (`[plugin.artnet]`). `[main-thread]` owns it; the network thread reads a
/// snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArtNetSettings {
    /// Where the packets go, each address once; empty (default): Art-Net off.
    pub targets: ArtNetTargets,
    /// The packets' StreamId, 0–255 (default 0, the master stream).
    pub stream_id: StreamId,
}

impl ArtNetSettings {
    /// Whether Art-Net goes out at all: some target is set.
    pub fn is_on(&self) -> bool {
        !self.targets.is_empty()
    }
}

/// MTC through the plugin's MIDI output (`[plugin.mtc]`). `[main-thread]` owns it; the audio
/// thread sees it through [`AudioOutputs`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MtcSettings {
    /// Send MTC (quarter frames and full frames); off by default.
    pub enabled: bool,
}

/// What the audio thread needs of the outputs' settings, `Copy` and packed into one `u64`
/// ([`Self::pack`]) so that it crosses threads through an atomic, without a lock. Built by
/// [`super::Settings::audio_outputs`] on the `[main-thread]`; unpacked on the `[audio-thread]`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AudioOutputs {
    /// Which channel LTC replaces (off: no LTC).
    pub ltc_channel: LtcChannel,
    /// LTC's peak level, dBFS.
    pub ltc_level: LtcLevel,
    /// LTC while stopped.
    pub ltc_stopped: LtcStopped,
    /// MTC on.
    pub mtc: bool,
    /// 50, 59.94 and 60 fps as frame pairs (LTC, MTC; Art-Net reads it from the settings).
    pub half_rate: bool,
}

/// [`AudioOutputs::pack`]'s layout: the level's `f32` bits in bits 0–31, then these.
const CHANNEL_SHIFT: u32 = 32;
/// The stopped mode's bit (set: still).
const STILL_BIT: u64 = 1 << 34;
/// MTC's bit.
const MTC_BIT: u64 = 1 << 35;
/// Half rate's bit.
const HALF_RATE_BIT: u64 = 1 << 36;

impl AudioOutputs {
    /// `[thread-safe]` One `u64` holding every field exactly (the level's `f32` bit for bit).
    pub fn pack(self) -> u64 {
        let mut bits = u64::from(self.ltc_level.dbfs().to_bits()) | (self.ltc_channel.bits() << CHANNEL_SHIFT);
        if self.ltc_stopped == LtcStopped::Still {
            bits |= STILL_BIT;
        }
        if self.mtc {
            bits |= MTC_BIT;
        }
        if self.half_rate {
            bits |= HALF_RATE_BIT;
        }
        bits
    }

    /// `[thread-safe]` What [`Self::pack`] packed. Any `u64` gives valid outputs: a level that
    /// is not one (never packed) is the default level, unused bits are ignored. No allocation,
    /// no panic: the audio thread calls it every block.
    pub fn unpack(bits: u64) -> Self {
        #[allow(clippy::cast_possible_truncation, reason = "the low 32 bits are the level's")]
        let level = f32::from_bits(bits as u32);
        Self {
            ltc_channel: LtcChannel::from_bits(bits >> CHANNEL_SHIFT),
            ltc_level: LtcLevel::new(level).unwrap_or(LtcLevel::DEFAULT),
            ltc_stopped: if bits & STILL_BIT == 0 { LtcStopped::Silence } else { LtcStopped::Still },
            mtc: bits & MTC_BIT != 0,
            half_rate: bits & HALF_RATE_BIT != 0,
        }
    }
}

/// Which outputs are on, for what is said about them ([`OutputNotice`]). `Copy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct OutputsOn {
    /// LTC goes to some channel.
    pub ltc: bool,
    /// MTC is enabled.
    pub mtc: bool,
    /// Art-Net has a target.
    pub artnet: bool,
}

impl OutputsOn {
    /// The outputs `settings` turn on.
    pub fn of(settings: &super::Settings) -> Self {
        Self { ltc: settings.ltc.channel.is_on(), mtc: settings.mtc.enabled, artnet: settings.artnet.is_on() }
    }

    /// Whether any is on.
    pub const fn any(self) -> bool {
        self.ltc || self.mtc || self.artnet
    }

    /// `"LTC, MTC and Art-Net"`, `"MTC and Art-Net"`, `"LTC"`: the ones that are on, or `""`.
    pub const fn names(self) -> &'static str {
        match (self.ltc, self.mtc, self.artnet) {
            (true, true, true) => "LTC, MTC and Art-Net",
            (true, true, false) => "LTC and MTC",
            (true, false, true) => "LTC and Art-Net",
            (false, true, true) => "MTC and Art-Net",
            (true, false, false) => "LTC",
            (false, true, false) => "MTC",
            (false, false, true) => "Art-Net",
            (false, false, false) => "",
        }
    }
}

/// What the user must be told about the Frame Rate on the outputs that are on (issue 16: never
/// substitute or refuse silently): the window's strip and, once per change, the log
/// ([`Self::change_to`]). The words of the rates come from core's
/// [`osc_timecode_core::carriage`], the one owner of how a rate travels. `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputNotice {
    /// Nothing to say: no output is on, or they carry the rate as itself.
    Quiet,
    /// The outputs that are on cannot carry the rate (50, 59.94 or 60 fps without half rate):
    /// nothing goes out on them.
    Refused {
        /// The outputs that are on.
        on: OutputsOn,
        /// The rate and its half.
        why: NotCarried,
    },
    /// The outputs that are on carry the rate as another (23.976 as 24, 29.97 as 30) or in
    /// frame pairs (half rate).
    Carried {
        /// The outputs that are on.
        on: OutputsOn,
        /// How the rate travels.
        how: Carriage,
    },
}

impl OutputNotice {
    /// The notice for the Frame Rate `rate` and `settings` (its outputs and `half_rate`).
    pub fn of(rate: FrameRate, settings: &super::Settings) -> Self {
        Self::for_outputs(rate, settings.half_rate, OutputsOn::of(settings))
    }

    /// The notice for `rate` on the outputs `on`, with `half_rate` or not.
    pub fn for_outputs(rate: FrameRate, half_rate: bool, on: OutputsOn) -> Self {
        if !on.any() {
            return Self::Quiet;
        }
        match Carriage::of(rate, half_rate) {
            Err(why) => Self::Refused { on, why },
            Ok(how) if how.is_substituted() || how.is_half_rate() => Self::Carried { on, how },
            Ok(_) => Self::Quiet,
        }
    }

    /// Whether the outputs send nothing (a fault, where a substitution is information).
    pub const fn is_refusal(self) -> bool {
        matches!(self, Self::Refused { .. })
    }

    /// The log line for a change from `self` to `now`, if it deserves one: every new notice
    /// (so once per change, never per block or per frame); a notice that ends says nothing.
    pub fn change_to(self, now: Self) -> Option<String> {
        (now != self && now != Self::Quiet).then(|| now.to_string())
    }
}

impl fmt::Display for OutputNotice {
    /// `"LTC, MTC and Art-Net cannot carry 50 fps: turn on half_rate to send frame pairs at 25
    /// fps; nothing is sent on them until then"`, `"29.97 fps sent as 30 fps on LTC (receivers
    /// that run their own clock from it run 0.1 % fast)"`, `"50 fps at half rate: frame pairs as
    /// 25 fps on MTC"`; `""` when quiet.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Quiet => Ok(()),
            Self::Refused { on, why } => {
                let them = if matches!(on.names(), "LTC" | "MTC" | "Art-Net") { "it" } else { "them" };
                write!(f, "{} {why}; nothing is sent on {them} until then", on.names())
            }
            Self::Carried { on, how } => {
                write!(f, "{how} on {}", on.names())?;
                if how.is_substituted() {
                    f.write_str(" (receivers that run their own clock from it run 0.1 % fast)")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{ConfigFile, Settings, StateError};

    /// Issue 16's keys and defaults, public API: a config file holding exactly the issue's block
    /// reads as the defaults, and the settings are written with these names and values.
    #[test]
    fn the_keys_are_frozen() {
        let issue = r#"
[plugin.ltc]
channel = "off"        # off | left | right | both
level_dbfs = -18.0
stopped = "silence"    # silence | still
[plugin.artnet]
targets = []           # e.g. ["127.0.0.1:6454"]
stream_id = 0
[plugin.mtc]
enabled = false
[plugin]
half_rate = false      # 50/59.94/60 as frame pairs on LTC, MTC and Art-Net
"#;
        let file: ConfigFile = toml::from_str(issue).unwrap();
        assert_eq!(file.plugin.unwrap().0, Settings::default());
        let json = serde_json::to_value(Settings::default()).unwrap();
        assert_eq!(json["half_rate"], serde_json::json!(false));
        assert_eq!(json["ltc"], serde_json::json!({ "channel": "off", "level_dbfs": -18.0, "stopped": "silence" }));
        assert_eq!(json["artnet"], serde_json::json!({ "targets": [], "stream_id": 0 }));
        assert_eq!(json["mtc"], serde_json::json!({ "enabled": false }));
        let names: Vec<_> = LtcChannel::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(names, ["off", "left", "right", "both"]);
        let names: Vec<_> = LtcStopped::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(names, ["silence", "still"]);
        for c in LtcChannel::ALL {
            assert_eq!(serde_json::to_value(c).unwrap(), c.name(), "the window's name is the file's");
        }
        for s in LtcStopped::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.name(), "the window's name is the file's");
        }
    }

    #[test]
    fn the_config_file_sets_every_output() {
        let text = r#"
[plugin]
half_rate = true
[plugin.ltc]
channel = "both"
level_dbfs = -20
stopped = "still"
[plugin.artnet]
targets = ["127.0.0.1:6455", "10.255.255.255"]
stream_id = 7
[plugin.mtc]
enabled = true
"#;
        let s = toml::from_str::<ConfigFile>(text).unwrap().plugin.unwrap().0;
        assert!(s.half_rate && s.mtc.enabled);
        assert_eq!(
            s.ltc,
            LtcSettings {
                channel: LtcChannel::Both,
                level_dbfs: LtcLevel::new(-20.0).unwrap(),
                stopped: LtcStopped::Still
            }
        );
        let targets: Vec<String> = s.artnet.targets.iter().map(ToString::to_string).collect();
        assert_eq!(targets, ["127.0.0.1:6455", "10.255.255.255:6454"]);
        assert_eq!(s.artnet.stream_id.get(), 7);
        assert!(s.artnet.is_on());
        // The state holds the same, the bare address with its port.
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains(r#""artnet":{"targets":["127.0.0.1:6455","10.255.255.255:6454"],"stream_id":7}"#));
        assert_eq!(Settings::from_state(&json).unwrap(), s);
        let back: Settings = toml::from_str(&toml::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }

    /// A project saved before issue 16 (no outputs in its settings) opens with the outputs off.
    #[test]
    fn a_project_of_the_previous_version_opens_with_the_outputs_off() {
        let json = r#"{"targets":["127.0.0.1:9"],"keepalive_ms":5,"output_latency_ms":0.0,"offline":"silent","cues":{"enabled":true,"listen":"127.0.0.1:5005","allow":["127.0.0.0/8","::1/128"],"token":null,"quantise":false,"note_length_ms":0,"dedupe_ms":10000,"defaults":true,"map":[]}}"#;
        let s = Settings::from_state(json).unwrap();
        assert_eq!(s.keepalive_ms, 5, "its own settings kept");
        let d = Settings::default();
        assert_eq!((s.half_rate, s.ltc, &s.artnet, s.mtc), (d.half_rate, d.ltc, &d.artnet, d.mtc));
        assert_eq!(s.audio_outputs(), AudioOutputs::default());
        assert!(!s.ltc.channel.is_on() && !s.artnet.is_on() && !s.mtc.enabled);
    }

    #[test]
    fn levels_are_refused_alike_from_text_and_files() {
        for (text, dbfs) in
            [("-18", -18.0), (" -20.5 ", -20.5), ("0", 0.0), ("-60", -60.0), ("-6 dBFS", -6.0), ("-3dB", -3.0)]
        {
            assert_eq!(text.parse::<LtcLevel>().map(LtcLevel::dbfs), Ok(dbfs), "{text:?}");
        }
        for (text, want) in [
            ("", LevelError::NotANumber),
            ("loud", LevelError::NotANumber),
            ("-18 dBu", LevelError::NotANumber),
            ("0.1", LevelError::OutOfRange("0.1".into())),
            ("-60.001", LevelError::OutOfRange("-60.001".into())),
            ("NaN", LevelError::OutOfRange("NaN".into())),
            ("inf", LevelError::OutOfRange("inf".into())),
            ("-inf", LevelError::OutOfRange("-inf".into())),
            ("1e300", LevelError::OutOfRange("1e300".into())),
        ] {
            assert_eq!(text.parse::<LtcLevel>(), Err(want), "{text:?}");
        }
        assert_eq!(LevelError::OutOfRange("3.0".into()).to_string(), "the LTC level is -60 to 0 dBFS, not 3.0");
        // Files: the same check and message, integers too; beyond f32 is refused, not rounded.
        let toml_level = |v: &str| {
            toml::from_str::<ConfigFile>(&format!("[plugin.ltc]\nlevel_dbfs = {v}\n"))
                .map(|f| f.plugin.unwrap().0.ltc.level_dbfs.dbfs())
                .map_err(|e| e.to_string())
        };
        assert_eq!(toml_level("-18"), Ok(-18.0));
        assert_eq!(toml_level("-0.5"), Ok(-0.5));
        for (v, shown) in
            [("nan", "NaN"), ("inf", "inf"), ("-inf", "-inf"), ("3", "3"), ("-61.0", "-61.0"), ("-1e39", "-1e39")]
        {
            let err = toml_level(v).unwrap_err();
            assert!(err.contains(&format!("the LTC level is -60 to 0 dBFS, not {shown}")), "{v}: {err}");
        }
        for v in ["\"-18\"", "true"] {
            assert!(toml_level(v).unwrap_err().contains("the LTC level is a number of dBFS, -60 to 0"), "{v}");
        }
        let state = |v: &str| Settings::from_state(&format!(r#"{{"ltc": {{"level_dbfs": {v}}}}}"#));
        assert_eq!(state("-12.25").unwrap().ltc.level_dbfs.dbfs(), -12.25);
        for v in ["1", "-60.5", "1e300", "-1e39", "null", "\"-18\"", "-9223372036854775808", "18446744073709551615"] {
            let err = state(v).expect_err(v);
            assert!(matches!(err, StateError::Invalid(_)), "{v}: {err}");
        }
        assert!(state("0.5").unwrap_err().to_string().contains("the LTC level is -60 to 0 dBFS, not 0.5"));
        // Every f32 level written is read back exactly.
        for dbfs in [-18.0f32, -18.1, -0.0, -59.999_996, -1.0e-30, -33.333_332] {
            let level = LtcLevel::new(dbfs).unwrap();
            let json = serde_json::to_string(&level).unwrap();
            assert_eq!(serde_json::from_str::<LtcLevel>(&json).unwrap().dbfs().to_bits(), dbfs.to_bits(), "{json}");
            assert_eq!(level.to_string().parse::<LtcLevel>().unwrap().dbfs().to_bits(), dbfs.to_bits());
        }
    }

    #[test]
    fn art_net_targets_are_ipv4_with_a_port() {
        let ok = |text: &str| text.parse::<ArtNetTarget>().map(|t| t.to_string());
        assert_eq!(ok("10.0.0.5").as_deref(), Ok("10.0.0.5:6454"), "a bare address is Art-Net's port");
        assert_eq!(ok(" 127.0.0.1:6455 ").as_deref(), Ok("127.0.0.1:6455"));
        assert_eq!(ok("255.255.255.255").as_deref(), Ok("255.255.255.255:6454"), "broadcast as written");
        for (text, want) in [
            ("", ArtNetTargetError::Address(AddressError::Empty)),
            ("::1", ArtNetTargetError::Ipv6),
            ("[::1]", ArtNetTargetError::Ipv6),
            ("[::1]:6454", ArtNetTargetError::Ipv6),
            ("::1:6454", ArtNetTargetError::Ipv6),
            ("[::ffff:10.0.0.1]:6454", ArtNetTargetError::Ipv6),
            ("[::1]:99999", ArtNetTargetError::Ipv6),
            ("127.0.0.1:0", ArtNetTargetError::Address(AddressError::PortZero)),
            ("127.0.0.1:70000", ArtNetTargetError::Address(AddressError::PortRange("70000".into()))),
            ("console.local", ArtNetTargetError::Address(AddressError::HostName("console.local".into()))),
            ("console:6454", ArtNetTargetError::Address(AddressError::HostName("console".into()))),
            ("10.0.0", ArtNetTargetError::NotAnAddress),
            ("10.0.0.5:", ArtNetTargetError::NotAnAddress),
            ("256.0.0.1", ArtNetTargetError::NotAnAddress),
        ] {
            assert_eq!(text.parse::<ArtNetTarget>(), Err(want), "{text:?}");
        }
        assert_eq!(
            ArtNetTargetError::Ipv6.to_string(),
            "Art-Net is IPv4 only: write an IPv4 address, like 10.0.0.5 or 10.255.255.255:6454"
        );
        assert_eq!(ArtNetTarget::new("127.0.0.1:0".parse().unwrap()), None);
        // Files and states refuse alike, quoting the same message.
        let err = serde_json::from_str::<ArtNetSettings>(r#"{"targets": ["[::1]:6454"]}"#).unwrap_err().to_string();
        assert!(err.starts_with(&ArtNetTargetError::Ipv6.to_string()), "{err}");
        let err = toml::from_str::<ConfigFile>("[plugin.artnet]\ntargets = [\"127.0.0.1:0\"]\n").unwrap_err();
        assert!(err.to_string().contains(&AddressError::PortZero.to_string()), "{err}");
    }

    #[test]
    fn art_net_target_lists_hold_each_address_once_and_at_most_the_maximum() {
        let t = |n: usize| format!("127.0.0.1:{}", 7000 + n).parse::<ArtNetTarget>().unwrap();
        let full: Vec<_> = (0..MAX_ARTNET_TARGETS).map(t).collect();
        let mut list = ArtNetTargets::new(full.clone()).unwrap();
        assert_eq!(list.push(t(99)), Err(ArtNetListError::TooMany(MAX_ARTNET_TARGETS + 1)));
        assert_eq!(list.refuse_full(), Err(ArtNetListError::TooMany(MAX_ARTNET_TARGETS + 1)));
        assert_eq!(ArtNetListError::TooMany(17).to_string(), "at most 16 Art-Net targets, not 17");
        assert_eq!(list.remove(0), Some(t(0)));
        assert_eq!(list.push(t(1)), Err(ArtNetListError::Duplicate(Duplicate("127.0.0.1:7001".into()))));
        assert_eq!(list.replace(0, t(2)), Err(Duplicate("127.0.0.1:7002".into())));
        assert_eq!(list.replace(0, t(0)), Ok(true));
        assert_eq!(list.push(t(1000)), Ok(()));
        assert_eq!(list.len(), MAX_ARTNET_TARGETS);
        let mut too_many = full.clone();
        too_many.push(t(99));
        assert_eq!(ArtNetTargets::new(too_many.clone()), Err(ArtNetListError::TooMany(MAX_ARTNET_TARGETS + 1)));
        let texts: Vec<String> = too_many.iter().map(ToString::to_string).collect();
        let err = Settings::from_state(&serde_json::json!({ "artnet": { "targets": texts } }).to_string()).unwrap_err();
        assert!(err.to_string().contains("at most 16 Art-Net targets, not 17"), "{err}");
        let toml = format!("[plugin.artnet]\ntargets = {}\n", toml::Value::from(texts));
        assert!(toml::from_str::<ConfigFile>(&toml).unwrap_err().to_string().contains("at most 16 Art-Net targets"));
        // The same address written two ways is one target.
        let err = Settings::from_state(r#"{"artnet": {"targets": ["10.0.0.5", "10.0.0.5:6454"]}}"#).unwrap_err();
        assert!(err.to_string().contains("10.0.0.5:6454 is already in the list"), "{err}");
    }

    #[test]
    fn stream_ids_are_0_to_255() {
        let state = |v: &str| Settings::from_state(&format!(r#"{{"artnet": {{"stream_id": {v}}}}}"#));
        assert_eq!(state("255").unwrap().artnet.stream_id, StreamId::MAX);
        for v in ["256", "-1", "1.5", "\"3\""] {
            assert!(matches!(state(v), Err(StateError::Invalid(_))), "{v}");
        }
        assert!(state("256").unwrap_err().to_string().contains("the Art-Net stream id is 0-255, not 256"));
        assert_eq!(" 12 ".parse::<StreamId>().map(StreamId::get), Ok(12));
        assert_eq!("256".parse::<StreamId>().unwrap_err().to_string(), "the Art-Net stream id is 0-255, not 256");
    }

    #[test]
    fn unknown_keys_in_an_output_table_are_refused() {
        for table in ["ltc", "artnet", "mtc"] {
            let text = format!("[plugin.{table}]\nenable = true\n");
            assert!(toml::from_str::<ConfigFile>(&text).is_err(), "{table}");
        }
        assert!(Settings::from_state(r#"{"ltc": {"channel": "centre"}}"#).is_err());
        assert!(Settings::from_state(r#"{"ltc": {"stopped": "loop"}}"#).is_err());
        assert!(Settings::from_state(r#"{"half_rate": "yes"}"#).is_err());
        assert!(Settings::from_state(r#"{"mtc": {"enabled": 1}}"#).is_err());
    }

    /// Every combination, at a few levels, packs and unpacks to itself.
    #[test]
    fn audio_outputs_pack_losslessly() {
        let levels = [-18.0f32, 0.0, -0.0, -60.0, -20.5, -59.999_996, -1.0e-30, -33.333_332];
        let mut seen = std::collections::HashSet::new();
        for ltc_channel in LtcChannel::ALL {
            for ltc_stopped in LtcStopped::ALL {
                for mtc in [false, true] {
                    for half_rate in [false, true] {
                        for dbfs in levels {
                            let ltc_level = LtcLevel::new(dbfs).unwrap();
                            let outputs = AudioOutputs { ltc_channel, ltc_level, ltc_stopped, mtc, half_rate };
                            let packed = outputs.pack();
                            assert!(seen.insert(packed), "{outputs:?} packs like another");
                            let back = AudioOutputs::unpack(packed);
                            assert_eq!(back, outputs);
                            assert_eq!(back.ltc_level.dbfs().to_bits(), dbfs.to_bits(), "bit for bit");
                        }
                    }
                }
            }
        }
        assert_eq!(AudioOutputs::unpack(AudioOutputs::default().pack()), AudioOutputs::default());
        let s = Settings {
            half_rate: true,
            ltc: LtcSettings { channel: LtcChannel::Right, ..LtcSettings::default() },
            mtc: MtcSettings { enabled: true },
            ..Settings::default()
        };
        let want = AudioOutputs {
            ltc_channel: LtcChannel::Right,
            ltc_level: LtcLevel::DEFAULT,
            ltc_stopped: LtcStopped::Silence,
            mtc: true,
            half_rate: true,
        };
        assert_eq!(AudioOutputs::unpack(s.audio_outputs().pack()), want);
    }

    /// Any `u64` unpacks to valid outputs, without a panic (a fixed-seed xorshift, and the
    /// edges).
    #[test]
    fn any_u64_unpacks_to_valid_outputs() {
        let check = |bits: u64| {
            let outputs = AudioOutputs::unpack(bits);
            let level = outputs.ltc_level.dbfs();
            assert!((MIN_LTC_LEVEL_DBFS..=MAX_LTC_LEVEL_DBFS).contains(&level), "{bits:#x}: {level}");
            assert_eq!(AudioOutputs::unpack(outputs.pack()), outputs, "{bits:#x}");
        };
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            check(x);
        }
        let nan = u64::from(f32::NAN.to_bits());
        for bits in [0, u64::MAX, nan, u64::from(f32::INFINITY.to_bits()), u64::from(1.0f32.to_bits()), 1 << 63] {
            check(bits);
        }
        assert_eq!(AudioOutputs::unpack(nan).ltc_level, LtcLevel::DEFAULT);
    }

    #[test]
    fn notices_name_the_outputs_that_are_on_and_what_they_do_with_the_rate() {
        let all = OutputsOn { ltc: true, mtc: true, artnet: true };
        let say = |rate, half, on| OutputNotice::for_outputs(rate, half, on).to_string();
        assert_eq!(
            say(FrameRate::FPS_50, false, all),
            "LTC, MTC and Art-Net cannot carry 50 fps: turn on half_rate to send frame pairs at 25 fps; nothing is \
             sent on them until then"
        );
        assert_eq!(
            say(FrameRate::FPS_60, false, OutputsOn { mtc: true, ..OutputsOn::default() }),
            "MTC cannot carry 60 fps: turn on half_rate to send frame pairs at 30 fps; nothing is sent on it until then"
        );
        assert_eq!(
            say(FrameRate::FPS_29_97_NDF, false, all),
            "29.97 fps sent as 30 fps on LTC, MTC and Art-Net (receivers that run their own clock from it run 0.1 % \
             fast)"
        );
        assert_eq!(
            say(FrameRate::FPS_23_976, true, OutputsOn { ltc: true, artnet: true, mtc: false }),
            "23.976 fps sent as 24 fps on LTC and Art-Net (receivers that run their own clock from it run 0.1 % fast)"
        );
        assert_eq!(
            say(FrameRate::FPS_50, true, OutputsOn { artnet: true, ..OutputsOn::default() }),
            "50 fps at half rate: frame pairs as 25 fps on Art-Net"
        );
        assert_eq!(
            say(FrameRate::FPS_59_94_NDF, true, OutputsOn { ltc: true, mtc: true, artnet: false }),
            "59.94 fps at half rate: frame pairs as 29.97 fps, sent as 30 fps on LTC and MTC (receivers that run \
             their own clock from it run 0.1 % fast)"
        );
        // Nothing to say: the rate travels as itself, or no output is on (at every rate).
        for rate in [FrameRate::FPS_24, FrameRate::FPS_25, FrameRate::FPS_29_97_DF, FrameRate::FPS_30] {
            for half in [false, true] {
                assert_eq!(OutputNotice::for_outputs(rate, half, all), OutputNotice::Quiet, "{rate:?}");
            }
        }
        for rate in FrameRate::ALL {
            for half in [false, true] {
                assert_eq!(OutputNotice::for_outputs(rate, half, OutputsOn::default()), OutputNotice::Quiet);
                let notice = OutputNotice::for_outputs(rate, half, all);
                assert_eq!(notice.is_refusal(), rate.nominal() > 30 && !half, "{rate:?} {half}");
            }
        }
        assert_eq!(OutputNotice::Quiet.to_string(), "");
        // Which outputs are on, from the settings.
        let mut s = Settings::default();
        assert_eq!(OutputNotice::of(FrameRate::FPS_50, &s), OutputNotice::Quiet, "all off by default");
        s.ltc.channel = LtcChannel::Left;
        s.artnet.targets.push("127.0.0.1:6455".parse().unwrap()).unwrap();
        assert_eq!(OutputsOn::of(&s), OutputsOn { ltc: true, mtc: false, artnet: true });
        assert!(OutputNotice::of(FrameRate::FPS_50, &s).is_refusal());
        s.half_rate = true;
        assert!(matches!(OutputNotice::of(FrameRate::FPS_50, &s), OutputNotice::Carried { .. }));
    }

    #[test]
    fn the_log_hears_each_change_once() {
        let all = OutputsOn { ltc: true, mtc: true, artnet: true };
        let refused = OutputNotice::for_outputs(FrameRate::FPS_50, false, all);
        let substituted = OutputNotice::for_outputs(FrameRate::FPS_29_97_NDF, false, all);
        let fewer = OutputNotice::for_outputs(FrameRate::FPS_50, false, OutputsOn { mtc: false, artnet: false, ..all });
        let mut last = OutputNotice::Quiet;
        let mut lines = Vec::new();
        for now in [refused, refused, refused, substituted, substituted, OutputNotice::Quiet, refused, fewer] {
            lines.extend(last.change_to(now));
            last = now;
        }
        assert_eq!(lines, [refused.to_string(), substituted.to_string(), refused.to_string(), fewer.to_string()]);
    }
}
