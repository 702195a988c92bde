//! Every text field's check, refused in place with the reason, and the state of a field or a
//! list of addresses while it is typed. `[gui-thread]`.

use std::net::{IpAddr, SocketAddr};

use osc_timecode_core::cue::parse_allow_entry;
use osc_timecode_core::pattern;

use super::edits::ListEdit;
use crate::cues::map::{AllowEntry, MAX_PATTERN_LEN, PlainAddress};

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
pub(super) fn refuse_duplicate<T>(
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
pub(super) fn parse_number(text: &str, what: &'static str, min: u32, max: u32) -> Result<u32, FieldError> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FieldError::NotANumber { what });
    }
    match text.parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(FieldError::OutOfRange { what, min, max }),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::editor::fixtures::addr;

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
}
