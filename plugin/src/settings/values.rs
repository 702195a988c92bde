//! The values a user types or a file holds, each a type with one constructor that validates:
//! the config file, a project's saved state and the window all read them through it (serde
//! `try_from`), so the three refuse the same inputs with the same message (issue 15; before, the
//! token and port-0 rules lived only in the window). The messages are what the window shows
//! beside a field and what the config file's and the state's errors quote.
//!
//! Surrounding whitespace is ignored (a pasted address), except in a token, where it is refused
//! (a token is compared byte for byte). Errors allocate: every reader runs on the `[main-thread]`
//! or the `[gui-thread]`, never on the audio thread.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use ipnet::IpNet;
use osc_timecode_core::cue::parse_allow_entry;
use osc_timecode_core::pattern;
use serde::{Deserialize, Deserializer, Serialize};

/// The text form of a value type, for serde's `try_from = "String"` and `into = "String"`:
/// `TryFrom<String>` through its `FromStr` (so every reader refuses alike) and `String` from
/// the value through `$to_text`.
macro_rules! text_form {
    ($name:ty, $error:ty, |$v:ident| $to_text:expr) => {
        impl TryFrom<String> for $name {
            type Error = $error;
            fn try_from(text: String) -> Result<Self, $error> {
                text.parse()
            }
        }

        impl From<$name> for String {
            fn from($v: $name) -> String {
                $to_text
            }
        }
    };
}

// For the value types of the sibling modules (outputs.rs).
pub(super) use text_form;

/// The longest mapped address, in bytes. Patterns longer than this are not matched (unmapped):
/// it bounds matching work.
pub const MAX_PATTERN_LEN: usize = 256;

/// The longest token, in bytes.
pub const MAX_TOKEN_LEN: usize = 128;

/// Why a text is not a usable socket address (`IP:PORT`, IPv6 in brackets, port 1–65535).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Nothing but whitespace.
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
}

/// `IP:PORT` with IPv6 in brackets, port 1–65535, with a reason for each way it can be wrong.
pub(super) fn parse_socket_addr(text: &str) -> Result<SocketAddr, AddressError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(AddressError::Empty);
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return if port_usable(addr) { Ok(addr) } else { Err(AddressError::PortZero) };
    }
    if let Ok(ip) = text.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        return Err(match ip {
            // `::1:5006` is an IPv6 address too: only brackets say where the port starts.
            IpAddr::V6(_) if !text.starts_with('[') => AddressError::Ipv6Brackets,
            IpAddr::V6(ip) => AddressError::NoPort(format!("[{ip}]")),
            IpAddr::V4(ip) => AddressError::NoPort(ip.to_string()),
        });
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(if looks_like_name(text) {
            AddressError::HostName(text.into())
        } else {
            AddressError::NotAnAddress
        });
    };
    if host.contains(':') && !host.starts_with('[') {
        return Err(AddressError::Ipv6Brackets);
    }
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AddressError::NotAnAddress);
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.parse::<IpAddr>().is_ok() {
        // The host is fine, so the port is what failed: too big.
        return Err(AddressError::PortRange(port.trim_start_matches('0').into()));
    }
    Err(if looks_like_name(host) { AddressError::HostName(host.into()) } else { AddressError::NotAnAddress })
}

/// Whether senders and receivers can use `addr`'s port: any but 0.
const fn port_usable(addr: SocketAddr) -> bool {
    addr.port() != 0
}

/// `localhost`, `stage-pc.local`: a name, not an address.
fn looks_like_name(text: &str) -> bool {
    !text.is_empty()
        && text.bytes().any(|b| b.is_ascii_alphabetic())
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// A socket address type: text in and out as `IP:PORT`, checked by [`parse_socket_addr`].
macro_rules! socket_address {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(SocketAddr);

        impl $name {
            /// `addr` if its port is not 0. A `const fn`, for defaults; text is read by `FromStr`.
            pub const fn new(addr: SocketAddr) -> Option<Self> {
                if port_usable(addr) { Some(Self(addr)) } else { None }
            }

            /// Any address, port 0 too: for tests of what the threads do when the OS refuses a
            /// datagram (settings can no longer hold port 0).
            #[cfg(test)]
            #[allow(dead_code, reason = "one macro for both types; only targets send")]
            pub(crate) const fn unchecked(addr: SocketAddr) -> Self {
                Self(addr)
            }

            /// The address.
            pub const fn addr(self) -> SocketAddr {
                self.0
            }

            /// The IP address.
            pub const fn ip(self) -> IpAddr {
                self.0.ip()
            }

            /// The port, 1–65535.
            pub const fn port(self) -> u16 {
                self.0.port()
            }
        }

        impl FromStr for $name {
            type Err = AddressError;
            fn from_str(text: &str) -> Result<Self, AddressError> {
                parse_socket_addr(text).map(Self)
            }
        }

        text_form!($name, AddressError, |a| a.0.to_string());

        impl From<$name> for SocketAddr {
            fn from(a: $name) -> SocketAddr {
                a.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

socket_address! {
    /// Where `/sync/timecode` goes: an IP address (names are not looked up) and a port 1–65535.
    Target
}

socket_address! {
    /// Where the cue input listens: an IP address of this machine (`0.0.0.0` or `[::]` for every
    /// interface) and a port 1–65535.
    ListenAddress
}

/// Why a text is not an allow-list entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllowError {
    /// Nothing but whitespace.
    #[error("empty")]
    Empty,
    /// Not an IP address or CIDR range.
    #[error("not an address or range, like 192.168.1.20 or 10.0.0.0/8")]
    NotARange,
    /// `10.0.0.0/33`.
    #[error("/{prefix} is longer than an {family} address (at most /{max})")]
    PrefixTooLong {
        /// The prefix as written.
        prefix: String,
        /// `"IPv4"` or `"IPv6"`.
        family: &'static str,
        /// 32 or 128.
        max: u8,
    },
}

/// One allow-list entry: `10.0.0.0/8`, or one address (`192.168.1.20`, `::1`). Every `IpNet`
/// is a valid entry; text is read by `FromStr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AllowEntry(pub IpNet);

impl FromStr for AllowEntry {
    type Err = AllowError;
    fn from_str(text: &str) -> Result<Self, AllowError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(AllowError::Empty);
        }
        if let Some((ip, prefix)) = text.split_once('/')
            && let (Ok(ip), Ok(bits)) = (ip.parse::<IpAddr>(), prefix.parse::<u32>())
        {
            let (family, max) = if ip.is_ipv4() { ("IPv4", 32) } else { ("IPv6", 128) };
            if bits > u32::from(max) {
                return Err(AllowError::PrefixTooLong { prefix: prefix.into(), family, max });
            }
        }
        parse_allow_entry(text).map(Self).map_err(|_| AllowError::NotARange)
    }
}

text_form!(AllowEntry, AllowError, |entry| entry.0.to_string());

/// Why a text is not a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// An empty token (no token is `None`).
    #[error("empty")]
    Empty,
    /// Spaces at its ends.
    #[error("no spaces at the start or end of the token")]
    Spaces,
    /// Control characters.
    #[error("the token cannot hold control characters")]
    Control,
    /// Beyond [`MAX_TOKEN_LEN`].
    #[error("at most {MAX_TOKEN_LEN} bytes")]
    TooLong,
}

/// The shared secret every cue and `/status` query must carry first when set: not empty, no
/// spaces at its ends, no control characters, at most [`MAX_TOKEN_LEN`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Token(String);

impl Token {
    /// The token.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A token field's text, where empty means no token: the window's field, the config file's
    /// and the state's `token` (`""` there has always meant none).
    pub fn optional(text: &str) -> Result<Option<Self>, TokenError> {
        if text.is_empty() { Ok(None) } else { text.parse().map(Some) }
    }

    /// Serde for an `Option<Token>` field: missing, `null` or `""` is none.
    pub fn deserialize_optional<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Self>, D::Error> {
        let text = Option::<String>::deserialize(deserializer)?;
        text.map_or(Ok(None), |t| Self::optional(&t).map_err(serde::de::Error::custom))
    }
}

impl FromStr for Token {
    type Err = TokenError;
    fn from_str(text: &str) -> Result<Self, TokenError> {
        if text.is_empty() {
            return Err(TokenError::Empty);
        }
        if text.trim() != text {
            return Err(TokenError::Spaces);
        }
        if text.chars().any(char::is_control) {
            return Err(TokenError::Control);
        }
        if text.len() > MAX_TOKEN_LEN {
            return Err(TokenError::TooLong);
        }
        Ok(Self(text.into()))
    }
}

text_form!(Token, TokenError, |t| t.0);

/// Why a text is not a plain OSC address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlainAddressError {
    /// Nothing but whitespace.
    #[error("empty")]
    Empty,
    /// Beyond [`MAX_PATTERN_LEN`].
    #[error("that address is longer than {MAX_PATTERN_LEN} bytes")]
    TooLong,
    /// Pattern characters.
    #[error("{0:?} is a pattern: map plain addresses, like /cue/intro")]
    Pattern(String),
    /// Not OSC.
    #[error("an OSC address starts with / and has no spaces or # , ? * [ ] {{ }}")]
    NotOsc,
}

/// A plain OSC address, as the cue map holds them: starts with `/`, no spaces or `#*,?[]{}`,
/// at most [`MAX_PATTERN_LEN`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PlainAddress(String);

impl PlainAddress {
    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for PlainAddress {
    type Err = PlainAddressError;
    fn from_str(text: &str) -> Result<Self, PlainAddressError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(PlainAddressError::Empty);
        }
        if text.len() > MAX_PATTERN_LEN {
            return Err(PlainAddressError::TooLong);
        }
        if pattern::is_pattern(text) {
            return Err(PlainAddressError::Pattern(text.into()));
        }
        if pattern::validate(text).is_err() {
            return Err(PlainAddressError::NotOsc);
        }
        Ok(Self(text.into()))
    }
}

text_form!(PlainAddress, PlainAddressError, |a| a.0);

/// Why a number is not a MIDI channel, a 7-bit MIDI value or a note length. One message per
/// rule: the window shows it beside the field, the config file's and a project state's errors
/// quote it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    /// Not a whole number: text in the window, a fraction, a string or a boolean in a file.
    #[error("{what} is a whole number, {range}")]
    NotWhole {
        /// What the number is (`"the MIDI channel"`).
        what: &'static str,
        /// Its range as the user reads it (`"1-16"`).
        range: &'static str,
    },
    /// A whole number outside the range.
    #[error("{what} is {range}, not {value}")]
    OutOfRange {
        /// What the number is.
        what: &'static str,
        /// Its range as the user reads it.
        range: &'static str,
        /// The number as written.
        value: String,
    },
}

/// Reads any integer a reader holds (JSON's u64 or i64, TOML's i64), widened, so that the
/// type's range check refuses it with the type's message rather than serde's `u8`/`u32`
/// limits; a fraction, a string or a boolean is [`NumberError::NotWhole`].
struct Whole {
    /// What the number is, for the message.
    what: &'static str,
    /// Its range, for the message.
    range: &'static str,
}

impl Whole {
    fn not_whole<E: serde::de::Error>(&self) -> E {
        E::custom(NumberError::NotWhole { what: self.what, range: self.range })
    }
}

impl serde::de::Visitor<'_> for Whole {
    type Value = i128;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: a whole number, {}", self.what, self.range)
    }

    fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<i128, E> {
        Ok(n.into())
    }

    fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<i128, E> {
        Ok(n.into())
    }

    fn visit_i128<E: serde::de::Error>(self, n: i128) -> Result<i128, E> {
        Ok(n)
    }

    fn visit_u128<E: serde::de::Error>(self, n: u128) -> Result<i128, E> {
        // Beyond i128 is beyond every range here: saturate, the check refuses it.
        Ok(i128::try_from(n).unwrap_or(i128::MAX))
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<i128, E> {
        Err(self.not_whole())
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<i128, E> {
        Err(self.not_whole())
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<i128, E> {
        Err(self.not_whole())
    }
}

/// A whole number in a range, read from text (the window) and from files (serde) through one
/// check, so both refuse the same numbers with the same [`NumberError`].
macro_rules! bounded_number {
    ($(#[$doc:meta])* $name:ident: $repr:ty, $min:expr, $max:expr, what: $what:literal, range: $range:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name($repr);

        impl $name {
            /// The smallest.
            pub const MIN: Self = Self($min);
            /// The largest.
            pub const MAX: Self = Self($max);
            /// What the number is, in messages.
            const WHAT: &'static str = $what;
            /// Its range as the user reads it, in messages.
            const RANGE: &'static str = $range;

            /// `n` if it is in range.
            pub const fn new(n: $repr) -> Option<Self> {
                if matches!(n, $min..=$max) { Some(Self(n)) } else { None }
            }

            /// The number.
            pub const fn get(self) -> $repr {
                self.0
            }

            /// Any whole number: this type's, or the range error.
            fn whole(n: i128) -> Result<Self, NumberError> {
                <$repr>::try_from(n).ok().and_then(Self::new).ok_or_else(|| Self::out_of_range(n.to_string()))
            }

            fn out_of_range(value: String) -> NumberError {
                NumberError::OutOfRange { what: Self::WHAT, range: Self::RANGE, value }
            }
        }

        impl FromStr for $name {
            type Err = NumberError;
            /// A field's text: surrounding whitespace ignored, an optional sign, digits.
            fn from_str(text: &str) -> Result<Self, NumberError> {
                let text = text.trim();
                let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(NumberError::NotWhole { what: Self::WHAT, range: Self::RANGE });
                }
                // Digits beyond i128 are out of range too, shown as written.
                text.parse::<i128>().map_or_else(|_| Err(Self::out_of_range(text.into())), Self::whole)
            }
        }

        impl TryFrom<$repr> for $name {
            type Error = NumberError;
            fn try_from(n: $repr) -> Result<Self, NumberError> {
                Self::whole(n.into())
            }
        }

        impl From<$name> for $repr {
            fn from(n: $name) -> $repr {
                n.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl Serialize for $name {
            /// As the plain number: the state format is that of the number it replaced.
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                self.0.serialize(serializer)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let n = deserializer.deserialize_any(Whole { what: Self::WHAT, range: Self::RANGE })?;
                Self::whole(n).map_err(serde::de::Error::custom)
            }
        }
    };
}

bounded_number! {
    /// A MIDI channel as users count them, 1–16.
    Channel: u8, 1, 16, what: "the MIDI channel", range: "1-16"
}

impl Channel {
    /// Channel 1.
    pub const ONE: Self = Self::MIN;

    /// 0–15, as on the wire.
    pub const fn index(self) -> u8 {
        self.0 - 1
    }
}

bounded_number! {
    /// A 7-bit MIDI data value, 0–127 (key, velocity, controller number or value, program).
    U7: u8, 0, 127, what: "a MIDI key, velocity, controller, value or program", range: "0-127"
}

bounded_number! {
    /// An Art-Net ArtTimeCode StreamId, 0–255 (0 is the master stream). Receivers that follow
    /// one stream ignore the others.
    StreamId: u8, 0, 255, what: "the Art-Net stream id", range: "0-255"
}

impl Default for StreamId {
    /// 0, the master stream.
    fn default() -> Self {
        Self::MIN
    }
}

/// The longest note, ms: ten minutes. Longer is a typo (a note off that never comes in a show).
pub const MAX_NOTE_LENGTH_MS: u32 = 600_000;

bounded_number! {
    /// Milliseconds from a note on to its note off, 0 to [`MAX_NOTE_LENGTH_MS`]; 0 holds the
    /// note (no note off). `Copy`: the cue player reads it on the audio thread.
    NoteLength: u32, 0, MAX_NOTE_LENGTH_MS, what: "a note length", range: "0-600000 ms (0 holds the note)"
}

impl NoteLength {
    /// 0: the note is held, no note off follows.
    pub const HELD: Self = Self::MIN;

    /// Milliseconds, or `None` for a held note.
    pub const fn ms(self) -> Option<u32> {
        if self.0 == 0 { None } else { Some(self.0) }
    }
}

/// The longest parameter ramp, ms: ten minutes, as a note.
pub const MAX_RAMP_MS: u32 = 600_000;

bounded_number! {
    /// Milliseconds over which a `param` cue moves its parameter from where it is to the new
    /// value, 0 to [`MAX_RAMP_MS`]; 0 sets the value at once.
    RampMs: u32, 0, MAX_RAMP_MS, what: "a ramp", range: "0-600000 ms (0 sets the value at once)"
}

impl Default for RampMs {
    /// 0: at once.
    fn default() -> Self {
        Self::MIN
    }
}

/// A parameter's normalized value, 0.0–1.0, finite: what a `param` cue mapping sets when the cue
/// carries no VALUE. `Copy`; read and written as the plain number.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Normalized(f32);

// NaN is never held (`new` refuses it), so equality is an equivalence.
impl Eq for Normalized {}

impl Normalized {
    /// `v` if it is a finite number in 0.0–1.0.
    pub fn new(v: f32) -> Option<Self> {
        (0.0..=1.0).contains(&v).then_some(Self(v))
    }

    /// The value.
    pub const fn get(self) -> f32 {
        self.0
    }

    fn refused(value: impl fmt::Display) -> String {
        format!("a parameter value is 0.0-1.0 (normalized), not {value}")
    }
}

impl FromStr for Normalized {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        text.parse::<f32>().ok().and_then(Self::new).ok_or_else(|| Self::refused(format!("{text:?}")))
    }
}

impl fmt::Display for Normalized {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Normalized {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Normalized {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(deserializer)?;
        // Through f32, as the value is kept: 0.1 stays the f32 nearest 0.1.
        Self::new(v as f32).filter(|_| v.is_finite()).ok_or_else(|| serde::de::Error::custom(Self::refused(v)))
    }
}

/// Why a list cannot hold an entry: one like it is there already (the window's message, quoted
/// by the config file's and a project state's errors).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} is already in the list")]
pub struct Duplicate(pub String);

/// An entry of a list that holds no two alike: targets (by address), allow entries (by range),
/// mappings (by OSC address).
pub trait Unique {
    /// What two entries of a list must not share.
    type Key: std::hash::Hash + Eq + ?Sized;

    /// This entry's key.
    fn key(&self) -> &Self::Key;

    /// The entry as the window shows it, for [`Duplicate`].
    fn shown(&self) -> String;
}

impl Unique for Target {
    type Key = Self;
    fn key(&self) -> &Self {
        self
    }
    fn shown(&self) -> String {
        self.to_string()
    }
}

impl Unique for AllowEntry {
    type Key = Self;
    fn key(&self) -> &Self {
        self
    }
    fn shown(&self) -> String {
        self.0.to_string()
    }
}

/// A list with no two entries alike ([`Unique::key`]). The one constructor, the edits and serde
/// refuse a duplicate with [`Duplicate`], so the window, the config file and a project state
/// refuse the same lists (before, only the window did, and the cue matcher silently kept the
/// first of two mappings of one address). Serialized as the plain list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UniqueList<T>(Vec<T>);

/// The timecode targets, each address once.
pub type Targets = UniqueList<Target>;

/// The cue input's allow-list, each range once.
pub type AllowEntries = UniqueList<AllowEntry>;

impl<T> Default for UniqueList<T> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<T: Unique> UniqueList<T> {
    /// `entries`, or the first entry that repeats an earlier one's key.
    pub fn new(entries: Vec<T>) -> Result<Self, Duplicate> {
        // A set, not pairs: a file may hold a long list, and checking it must not stall.
        let mut seen = std::collections::HashSet::with_capacity(entries.len());
        if let Some(again) = entries.iter().find(|e| !seen.insert(e.key())) {
            return Err(Duplicate(again.shown()));
        }
        Ok(Self(entries))
    }

    /// A list of one.
    pub fn one(entry: T) -> Self {
        Self(vec![entry])
    }

    /// Whether `entry` may go in at row `at` (replacing it), or at the end (`None`): refused if
    /// another row holds its key.
    pub fn refuse_duplicate(&self, entry: &T, at: Option<usize>) -> Result<(), Duplicate> {
        self.refuse_key(entry.key(), at)
    }

    /// [`Self::refuse_duplicate`] for an entry of which only the key is known yet (a form whose
    /// other fields are still wrong).
    pub fn refuse_key(&self, key: &T::Key, at: Option<usize>) -> Result<(), Duplicate> {
        match self.0.iter().enumerate().find(|(i, e)| Some(*i) != at && e.key() == key) {
            Some((_, there)) => Err(Duplicate(there.shown())),
            None => Ok(()),
        }
    }

    /// Appends `entry` unless its key is in the list.
    pub fn push(&mut self, entry: T) -> Result<(), Duplicate> {
        self.refuse_duplicate(&entry, None)?;
        self.0.push(entry);
        Ok(())
    }

    /// Replaces row `i` with `entry` unless another row holds its key; `Ok(false)` if there is
    /// no row `i`.
    pub fn replace(&mut self, i: usize, entry: T) -> Result<bool, Duplicate> {
        self.refuse_duplicate(&entry, Some(i))?;
        Ok(self.0.get_mut(i).map(|row| *row = entry).is_some())
    }

    /// Removes row `i`, if there is one.
    pub fn remove(&mut self, i: usize) -> Option<T> {
        (i < self.0.len()).then(|| self.0.remove(i))
    }

    /// Keeps the entries `keep` takes (a part of a list without duplicates has none).
    pub fn retain(&mut self, keep: impl FnMut(&T) -> bool) {
        self.0.retain(keep);
    }
}

impl<T: Unique> TryFrom<Vec<T>> for UniqueList<T> {
    type Error = Duplicate;
    fn try_from(entries: Vec<T>) -> Result<Self, Duplicate> {
        Self::new(entries)
    }
}

impl<T> std::ops::Deref for UniqueList<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<'a, T> IntoIterator for &'a UniqueList<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl<T: PartialEq> PartialEq<[T]> for UniqueList<T> {
    fn eq(&self, other: &[T]) -> bool {
        self.0 == other
    }
}

impl<T: PartialEq> PartialEq<Vec<T>> for UniqueList<T> {
    fn eq(&self, other: &Vec<T>) -> bool {
        self.0 == *other
    }
}

impl<T: PartialEq, const N: usize> PartialEq<[T; N]> for UniqueList<T> {
    fn eq(&self, other: &[T; N]) -> bool {
        self.0 == other
    }
}

impl<T: Serialize> Serialize for UniqueList<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de> + Unique> Deserialize<'de> for UniqueList<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::new(Vec::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_addresses_are_refused_with_a_reason() {
        let ok = |text: &str| text.parse::<Target>().map(Target::addr);
        assert_eq!(ok(" 127.0.0.1:5006 "), Ok("127.0.0.1:5006".parse().unwrap()));
        assert_eq!(ok("[::1]:5006"), Ok("[::1]:5006".parse().unwrap()));
        assert_eq!("0.0.0.0:5005".parse::<ListenAddress>().unwrap().to_string(), "0.0.0.0:5005");
        for (text, want) in [
            ("", AddressError::Empty),
            ("   ", AddressError::Empty),
            ("127.0.0.1", AddressError::NoPort("127.0.0.1".into())),
            ("::1", AddressError::Ipv6Brackets),
            ("[::1]", AddressError::NoPort("[::1]".into())),
            ("127.0.0.1:0", AddressError::PortZero),
            ("[::]:0", AddressError::PortZero),
            ("127.0.0.1:65536", AddressError::PortRange("65536".into())),
            ("127.0.0.1:99999999999", AddressError::PortRange("99999999999".into())),
            ("[::1]:70000", AddressError::PortRange("70000".into())),
            ("::1:5006", AddressError::Ipv6Brackets),
            ("localhost:5006", AddressError::HostName("localhost".into())),
            ("stage-pc.local:5006", AddressError::HostName("stage-pc.local".into())),
            ("localhost", AddressError::HostName("localhost".into())),
            ("127.0.0.1:abc", AddressError::NotAnAddress),
            ("127.0.0.1:", AddressError::NotAnAddress),
            ("256.0.0.1:5006", AddressError::NotAnAddress),
            ("127.0.0.1:-1", AddressError::NotAnAddress),
            ("hello world:1", AddressError::NotAnAddress),
        ] {
            assert_eq!(text.parse::<Target>(), Err(want.clone()), "{text:?}");
            assert_eq!(text.parse::<ListenAddress>(), Err(want), "{text:?}");
        }
        assert_eq!(AddressError::PortRange("70000".into()).to_string(), "port 70000 is out of range (1-65535)");
        assert!(AddressError::HostName("localhost".into()).to_string().contains("IP address"));
        let zero = "127.0.0.1:0".parse().unwrap();
        assert_eq!((Target::new(zero), ListenAddress::new(zero)), (None, None));
    }

    #[test]
    fn allow_entries_are_addresses_or_ranges() {
        let entry = |text: &str| text.parse::<AllowEntry>().map(|e| e.0.to_string());
        assert_eq!(entry("10.0.0.0/8").as_deref(), Ok("10.0.0.0/8"));
        assert_eq!(entry(" 192.168.1.20 ").as_deref(), Ok("192.168.1.20/32"));
        assert_eq!(entry("::1").as_deref(), Ok("::1/128"));
        for (text, want) in [
            ("", AllowError::Empty),
            ("10.0.0.0/33", AllowError::PrefixTooLong { prefix: "33".into(), family: "IPv4", max: 32 }),
            ("::/129", AllowError::PrefixTooLong { prefix: "129".into(), family: "IPv6", max: 128 }),
            ("10.0.0.0/x", AllowError::NotARange),
            ("stage-pc", AllowError::NotARange),
            ("10.0.0", AllowError::NotARange),
        ] {
            assert_eq!(text.parse::<AllowEntry>(), Err(want), "{text:?}");
        }
        assert_eq!(
            AllowError::PrefixTooLong { prefix: "33".into(), family: "IPv4", max: 32 }.to_string(),
            "/33 is longer than an IPv4 address (at most /32)"
        );
    }

    #[test]
    fn tokens_are_compared_byte_for_byte_so_their_ends_are_not_trimmed() {
        assert_eq!("s3cret".parse::<Token>().unwrap().as_str(), "s3cret");
        assert_eq!("two words".parse::<Token>().unwrap().as_str(), "two words");
        assert_eq!(Token::optional(""), Ok(None));
        assert_eq!(Token::optional("t").unwrap().unwrap().as_str(), "t");
        for (text, want) in [
            ("", TokenError::Empty),
            (" s3cret", TokenError::Spaces),
            ("s3cret\n", TokenError::Spaces),
            ("a\u{7}b", TokenError::Control),
            ("a\u{0}b", TokenError::Control),
        ] {
            assert_eq!(text.parse::<Token>(), Err(want), "{text:?}");
        }
        assert_eq!("x".repeat(MAX_TOKEN_LEN).parse::<Token>().unwrap().as_str().len(), MAX_TOKEN_LEN);
        assert_eq!("x".repeat(MAX_TOKEN_LEN + 1).parse::<Token>(), Err(TokenError::TooLong));
        // Bytes, not characters: 43 three-byte characters are 129 bytes.
        assert_eq!("\u{20ac}".repeat(43).parse::<Token>(), Err(TokenError::TooLong));
    }

    #[test]
    fn mapped_addresses_are_plain_osc() {
        assert_eq!(" /cue/intro ".parse::<PlainAddress>().unwrap().as_str(), "/cue/intro");
        for (text, want) in [
            ("", PlainAddressError::Empty),
            ("/cue/*", PlainAddressError::Pattern("/cue/*".into())),
            ("/cue/{a,b}", PlainAddressError::Pattern("/cue/{a,b}".into())),
            ("cue/intro", PlainAddressError::NotOsc),
            ("/cue/in tro", PlainAddressError::NotOsc),
        ] {
            assert_eq!(text.parse::<PlainAddress>(), Err(want), "{text:?}");
        }
        let longest = format!("/{}", "a".repeat(MAX_PATTERN_LEN - 1));
        assert_eq!(longest.parse::<PlainAddress>().unwrap().as_str(), longest);
        assert_eq!(format!("{longest}a").parse::<PlainAddress>(), Err(PlainAddressError::TooLong));
    }

    #[test]
    fn numbers_are_refused_alike_from_text_and_from_files() {
        assert_eq!("16".parse::<Channel>(), Ok(Channel::MAX));
        assert_eq!(" 1 ".parse::<Channel>().map(Channel::index), Ok(0));
        assert_eq!("+7".parse::<U7>().map(U7::get), Ok(7));
        assert_eq!("0".parse::<NoteLength>().map(NoteLength::ms), Ok(None));
        assert_eq!("600000".parse::<NoteLength>().map(NoteLength::ms), Ok(Some(MAX_NOTE_LENGTH_MS)));
        let range =
            |value: &str| NumberError::OutOfRange { what: "the MIDI channel", range: "1-16", value: value.into() };
        let not_whole = NumberError::NotWhole { what: "the MIDI channel", range: "1-16" };
        for (text, want) in [
            ("0", range("0")),
            ("17", range("17")),
            ("-1", range("-1")),
            ("99999999999999999999999999999999999999999", range("99999999999999999999999999999999999999999")),
            ("", not_whole.clone()),
            ("-", not_whole.clone()),
            ("1.0", not_whole.clone()),
            ("1e1", not_whole.clone()),
            ("0x1", not_whole.clone()),
        ] {
            assert_eq!(text.parse::<Channel>(), Err(want), "{text:?}");
        }
        assert_eq!(range("17").to_string(), "the MIDI channel is 1-16, not 17");
        assert_eq!(not_whole.to_string(), "the MIDI channel is a whole number, 1-16");
        assert_eq!(Channel::try_from(17), Err(range("17")));
        assert_eq!(
            U7::try_from(128).unwrap_err().to_string(),
            "a MIDI key, velocity, controller, value or program is 0-127, not 128"
        );
        assert_eq!(
            NoteLength::try_from(600_001).unwrap_err().to_string(),
            "a note length is 0-600000 ms (0 holds the note), not 600001"
        );
        // Files: any integer reaches the range check (not serde's u8), anything else is not whole.
        let json = |text: &str| serde_json::from_str::<Channel>(text).map_err(|e| e.to_string());
        assert_eq!(json("16"), Ok(Channel::MAX));
        for n in ["256", "-300", "18446744073709551615"] {
            assert!(json(n).unwrap_err().starts_with(&range(n).to_string()), "{n}");
        }
        for other in ["1.5", "\"3\"", "true"] {
            assert!(json(other).unwrap_err().starts_with(&not_whole.to_string()), "{other}");
        }
        assert!(json("null").unwrap_err().contains("expected the MIDI channel: a whole number, 1-16"));
        // Written as the plain number.
        assert_eq!(serde_json::to_string(&NoteLength::new(250).unwrap()).unwrap(), "250");
        assert_eq!(toml::Value::try_from(U7::MAX).unwrap(), toml::Value::Integer(127));
    }

    #[test]
    fn lists_hold_no_two_alike() {
        let t = |text: &str| text.parse::<Target>().unwrap();
        let dup = Targets::new(vec![t("127.0.0.1:1"), t("[::1]:2"), t("127.0.0.1:1")]);
        assert_eq!(dup, Err(Duplicate("127.0.0.1:1".into())));
        assert_eq!(Duplicate("127.0.0.1:1".into()).to_string(), "127.0.0.1:1 is already in the list");
        let mut list = Targets::new(vec![t("127.0.0.1:1"), t("[::1]:2")]).unwrap();
        assert_eq!(list.refuse_duplicate(&t("[::1]:2"), None), Err(Duplicate("[::1]:2".into())));
        assert_eq!(list.refuse_duplicate(&t("[::1]:2"), Some(1)), Ok(()), "the row itself");
        assert_eq!(list.push(t("127.0.0.1:1")), Err(Duplicate("127.0.0.1:1".into())));
        assert_eq!(list.replace(0, t("[::1]:2")), Err(Duplicate("[::1]:2".into())));
        assert_eq!(list.replace(0, t("127.0.0.1:3")), Ok(true));
        assert_eq!(list.replace(7, t("127.0.0.1:4")), Ok(false), "no row 7");
        assert_eq!(list.remove(7), None);
        assert_eq!(list.remove(0), Some(t("127.0.0.1:3")));
        assert_eq!(list.push(t("127.0.0.1:3")), Ok(()));
        assert_eq!(list, [t("[::1]:2"), t("127.0.0.1:3")]);
        // Serde: the plain list, and a duplicate refused with the same message.
        let json = serde_json::to_string(&list).unwrap();
        assert_eq!(json, r#"["[::1]:2","127.0.0.1:3"]"#);
        assert_eq!(serde_json::from_str::<Targets>(&json).unwrap(), list);
        let err = serde_json::from_str::<AllowEntries>(r#"["10.0.0.0/8", "::1", "10.0.0.0/8"]"#).unwrap_err();
        assert!(err.to_string().starts_with("10.0.0.0/8 is already in the list"), "{err}");
        // A long list is checked with a set: 200,000 entries, the duplicate last.
        let mut many: Vec<AllowEntry> =
            (0..200_000u32).map(|n| AllowEntry(IpNet::from(IpAddr::from(n.to_be_bytes())))).collect();
        many.push(many[0]);
        assert_eq!(AllowEntries::new(many), Err(Duplicate("0.0.0.0/32".into())));
    }

    #[test]
    fn multicast_groups_are_targets_in_every_reader() {
        // Issue 18: the network thread sends to them on the machine's interface (or refuses them).
        let groups = ["239.192.50.6:5006", "[ff02::1234]:5006"];
        for text in groups {
            let target = text.parse::<Target>().unwrap();
            assert!(target.ip().is_multicast() && target.to_string() == text, "{text}");
        }
        let from_state = crate::settings::Settings::from_state(&format!(
            r#"{{"targets":{}}}"#,
            serde_json::to_string(&groups).unwrap()
        ))
        .unwrap();
        let dir = std::env::temp_dir().join(format!("osc-timecode-values-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.toml");
        std::fs::write(&path, format!("[plugin]\ntargets = [\"{}\", \"{}\"]\n", groups[0], groups[1])).unwrap();
        let from_config = crate::settings::Settings::from_config_file(&path).unwrap().expect("a [plugin] table");
        let _ = std::fs::remove_dir_all(&dir);
        let texts = |s: &crate::settings::Settings| s.targets.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(texts(&from_state), groups);
        assert_eq!(texts(&from_config), groups);
    }

    #[test]
    fn text_round_trips_through_serde() {
        for text in ["127.0.0.1:5006", "[::1]:9", "0.0.0.0:5005"] {
            let json = serde_json::to_string(&text.parse::<Target>().unwrap()).unwrap();
            assert_eq!(json, format!("{text:?}"));
            assert_eq!(serde_json::from_str::<ListenAddress>(&json).unwrap().to_string(), text);
        }
        let token: Token = serde_json::from_str("\"s3cret\"").unwrap();
        assert_eq!(serde_json::to_string(&token).unwrap(), "\"s3cret\"");
        let err = serde_json::from_str::<Target>("\"127.0.0.1:0\"").unwrap_err().to_string();
        assert!(err.starts_with(&AddressError::PortZero.to_string()), "{err}");
    }
}
