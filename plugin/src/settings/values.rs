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
fn parse_socket_addr(text: &str) -> Result<SocketAddr, AddressError> {
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

        impl TryFrom<String> for $name {
            type Error = AddressError;
            fn try_from(text: String) -> Result<Self, AddressError> {
                text.parse()
            }
        }

        impl From<$name> for String {
            fn from(a: $name) -> String {
                a.0.to_string()
            }
        }

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

impl TryFrom<String> for AllowEntry {
    type Error = AllowError;
    fn try_from(text: String) -> Result<Self, AllowError> {
        text.parse()
    }
}

impl From<AllowEntry> for String {
    fn from(entry: AllowEntry) -> Self {
        entry.0.to_string()
    }
}

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

impl TryFrom<String> for Token {
    type Error = TokenError;
    fn try_from(text: String) -> Result<Self, TokenError> {
        text.parse()
    }
}

impl From<Token> for String {
    fn from(t: Token) -> String {
        t.0
    }
}

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

impl TryFrom<String> for PlainAddress {
    type Error = PlainAddressError;
    fn try_from(text: String) -> Result<Self, PlainAddressError> {
        text.parse()
    }
}

impl From<PlainAddress> for String {
    fn from(a: PlainAddress) -> String {
        a.0
    }
}

/// A MIDI channel as users count them, 1–16.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Channel(u8);

impl Channel {
    /// Channel 1.
    pub const ONE: Self = Self(1);

    /// 0–15, as on the wire.
    pub fn index(self) -> u8 {
        self.0 - 1
    }
}

impl TryFrom<u8> for Channel {
    type Error = String;
    fn try_from(n: u8) -> Result<Self, String> {
        if (1..=16).contains(&n) { Ok(Self(n)) } else { Err(format!("MIDI channel {n} is not 1-16")) }
    }
}

impl From<Channel> for u8 {
    fn from(c: Channel) -> u8 {
        c.0
    }
}

/// A 7-bit MIDI data value, 0–127 (key, velocity, controller number or value, program).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct U7(u8);

impl U7 {
    /// 127.
    pub const MAX: Self = Self(127);

    /// `n` if it is 0–127.
    pub const fn new(n: u8) -> Option<Self> {
        if n <= 127 { Some(Self(n)) } else { None }
    }

    /// The value.
    pub fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for U7 {
    type Error = String;
    fn try_from(n: u8) -> Result<Self, String> {
        Self::new(n).ok_or_else(|| format!("MIDI value {n} is not 0-127"))
    }
}

impl From<U7> for u8 {
    fn from(v: U7) -> u8 {
        v.0
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
