//! Every text field's check, refused in place with the reason, and the state of a field or a
//! list of addresses while it is typed. `[gui-thread]`.
//!
//! A value the settings hold is checked by its type (`crate::settings::values`), and a row of a
//! list by the list's type (no duplicates): the same checks the config file and a project state
//! go through. What is left here is the start offset's text, which is a parameter.

use super::edits::ListEdit;
use crate::params::UnknownParam;
use crate::settings::outputs::{ArtNetListError, ArtNetTarget, ArtNetTargetError, ArtNetTargets, LevelError, LtcLevel};
use crate::settings::values::{
    AddressError, AllowEntries, AllowEntry, AllowError, Duplicate, ListenAddress, NumberError, PlainAddress,
    PlainAddressError, StreamId, Target, Targets, Token, TokenError,
};

/// Why a field's text was refused. The message is what the window shows beside the field; for
/// a value the settings hold it is its type's message, which the config file's and a project
/// state's errors quote too.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    /// A target or the listen address.
    #[error(transparent)]
    Address(#[from] AddressError),
    /// An allow-list entry.
    #[error(transparent)]
    Allow(#[from] AllowError),
    /// The token.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// A mapped address.
    #[error(transparent)]
    MappedAddress(#[from] PlainAddressError),
    /// A MIDI channel, a 7-bit MIDI value or a note length.
    #[error(transparent)]
    Number(#[from] NumberError),
    /// A `param` mapping's parameter ID.
    #[error(transparent)]
    Param(#[from] UnknownParam),
    /// A `param` mapping's value (0.0–1.0).
    #[error("{0}")]
    ParamValue(String),
    /// Already in the list.
    #[error(transparent)]
    Duplicate(#[from] Duplicate),
    /// An Art-Net target.
    #[error(transparent)]
    ArtNetTarget(#[from] ArtNetTargetError),
    /// The Art-Net target list is full.
    #[error(transparent)]
    ArtNetList(ArtNetListError),
    /// The LTC level.
    #[error(transparent)]
    Level(#[from] LevelError),
    /// The start offset.
    #[error("write HH:MM:SS from 00:00:00 to 23:59:59 (whole seconds)")]
    Offset,
}

/// A timecode target not already among `targets` (but for the one at `editing`).
pub fn parse_target(text: &str, targets: &Targets, editing: Option<usize>) -> Result<Target, FieldError> {
    let target: Target = text.parse()?;
    targets.refuse_duplicate(&target, editing)?;
    Ok(target)
}

/// An Art-Net target not already among `targets` (but for the one at `editing`); a new one
/// only while the list has room.
pub fn parse_artnet_target(
    text: &str,
    targets: &ArtNetTargets,
    editing: Option<usize>,
) -> Result<ArtNetTarget, FieldError> {
    let target: ArtNetTarget = text.parse()?;
    targets.refuse_duplicate(&target, editing)?;
    if editing.is_none() {
        targets.refuse_full().map_err(FieldError::ArtNetList)?;
    }
    Ok(target)
}

/// The LTC level, dBFS.
pub fn parse_ltc_level(text: &str) -> Result<LtcLevel, FieldError> {
    Ok(text.parse()?)
}

/// The Art-Net StreamId.
pub fn parse_stream_id(text: &str) -> Result<StreamId, FieldError> {
    Ok(text.parse()?)
}

/// The cue input's listen address.
pub fn parse_listen(text: &str) -> Result<ListenAddress, FieldError> {
    Ok(text.parse()?)
}

/// An allow-list entry not already in `allow` (but for the one at `editing`).
pub fn parse_allow(text: &str, allow: &AllowEntries, editing: Option<usize>) -> Result<AllowEntry, FieldError> {
    let entry: AllowEntry = text.parse()?;
    allow.refuse_duplicate(&entry, editing)?;
    Ok(entry)
}

/// The token field: empty is no token.
pub fn parse_token(text: &str) -> Result<Option<Token>, FieldError> {
    Ok(Token::optional(text)?)
}

/// The start offset as the Start Offset parameter takes it, whole seconds.
pub fn parse_offset(text: &str) -> Result<i32, FieldError> {
    crate::params::parse_offset(text).ok_or(FieldError::Offset)
}

/// A plain OSC address for the mapping table.
pub fn parse_mapped_address(text: &str) -> Result<PlainAddress, FieldError> {
    Ok(text.parse()?)
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

    fn target(s: &str) -> Target {
        s.parse().unwrap()
    }

    fn entry(s: &str) -> AllowEntry {
        s.parse().unwrap()
    }

    #[test]
    fn settings_values_are_refused_with_their_types_message() {
        // The window adds nothing to a value's own check (`settings::values`, tested there):
        // the same error, so the same message as the config file's and a project state's.
        let port = FieldError::Address(AddressError::PortRange("70000".into()));
        assert_eq!(parse_target(" 127.0.0.1:70000", &Targets::default(), None), Err(port.clone()));
        assert_eq!(port.to_string(), "port 70000 is out of range (1-65535)");
        assert_eq!(parse_target(" 127.0.0.1:5006 ", &Targets::default(), None), Ok(target("127.0.0.1:5006")));
        assert_eq!(parse_listen("127.0.0.1:0"), Err(AddressError::PortZero.into()));
        assert_eq!(parse_listen(" 0.0.0.0:5005 ").unwrap().to_string(), "0.0.0.0:5005");
        assert_eq!(
            parse_allow("10.0.0.0/33", &AllowEntries::default(), None),
            Err(AllowError::PrefixTooLong { prefix: "33".into(), family: "IPv4", max: 32 }.into())
        );
        assert_eq!(parse_allow("stage-pc", &AllowEntries::default(), None), Err(AllowError::NotARange.into()));
        assert_eq!(parse_token(""), Ok(None));
        assert_eq!(parse_token("two words").unwrap().unwrap().as_str(), "two words");
        assert_eq!(parse_token(" s3cret"), Err(TokenError::Spaces.into()));
        assert_eq!(parse_token("a\u{7}b"), Err(TokenError::Control.into()));
        assert_eq!(parse_mapped_address(" /cue/intro ").unwrap().as_str(), "/cue/intro");
        assert_eq!(parse_mapped_address("/cue/*"), Err(PlainAddressError::Pattern("/cue/*".into()).into()));
        assert_eq!(parse_mapped_address(""), Err(PlainAddressError::Empty.into()));
        assert_eq!(parse_mapped_address("cue/intro").unwrap_err().to_string(), PlainAddressError::NotOsc.to_string());
    }

    #[test]
    fn outputs_fields_are_refused_with_their_types_message() {
        use crate::settings::outputs::MAX_ARTNET_TARGETS;
        let art = |s: &str| s.parse::<ArtNetTarget>().unwrap();
        let mut list = ArtNetTargets::new(vec![art("127.0.0.1:6455")]).unwrap();
        assert_eq!(parse_artnet_target(" 10.0.0.5 ", &list, None), Ok(art("10.0.0.5:6454")));
        assert_eq!(parse_artnet_target("[::1]:6454", &list, None), Err(ArtNetTargetError::Ipv6.into()));
        assert_eq!(parse_artnet_target("127.0.0.1:6455", &list, None), Err(Duplicate("127.0.0.1:6455".into()).into()));
        assert_eq!(parse_artnet_target("127.0.0.1:6455", &list, Some(0)), Ok(art("127.0.0.1:6455")));
        for n in 1..MAX_ARTNET_TARGETS {
            list.push(art(&format!("127.0.0.1:{}", 7000 + n))).unwrap();
        }
        let full = parse_artnet_target("10.0.0.5", &list, None).unwrap_err();
        assert_eq!(full.to_string(), "at most 16 Art-Net targets, not 17");
        assert_eq!(parse_artnet_target("10.0.0.5", &list, Some(3)), Ok(art("10.0.0.5")), "a row may change");
        assert_eq!(parse_ltc_level(" -20 ").map(LtcLevel::dbfs), Ok(-20.0));
        assert_eq!(parse_ltc_level("6").unwrap_err().to_string(), "the LTC level is -60 to 0 dBFS, not 6");
        assert_eq!(parse_ltc_level("loud"), Err(LevelError::NotANumber.into()));
        assert_eq!(parse_stream_id("255"), Ok(StreamId::MAX));
        assert_eq!(parse_stream_id("256").unwrap_err().to_string(), "the Art-Net stream id is 0-255, not 256");
    }

    #[test]
    fn offsets_are_whole_seconds_of_a_day() {
        assert_eq!(parse_offset("01:00:00"), Ok(3600));
        assert_eq!(parse_offset("10:00:00:00"), Ok(36_000));
        assert_eq!(parse_offset("24:00:00"), Err(FieldError::Offset));
        assert_eq!(parse_offset("1:00"), Err(FieldError::Offset));
    }

    #[test]
    fn targets_allow_entries_and_mappings_refuse_duplicates_except_the_row_being_edited() {
        let targets = Targets::new(vec![target("127.0.0.1:5006"), target("[::1]:5006")]).unwrap();
        assert_eq!(parse_target("127.0.0.1:5006", &targets, None), Err(Duplicate("127.0.0.1:5006".into()).into()));
        assert_eq!(parse_target("127.0.0.1:5006", &targets, Some(0)), Ok(targets[0]));
        assert!(parse_target("127.0.0.1:5006", &targets, Some(1)).is_err());
        assert_eq!(parse_target("10.0.0.5:9000", &targets, None), Ok(target("10.0.0.5:9000")));

        let allow = AllowEntries::one(entry("127.0.0.0/8"));
        assert_eq!(parse_allow("10.0.0.0/8", &allow, None).unwrap().0.to_string(), "10.0.0.0/8");
        assert_eq!(parse_allow("192.168.1.20", &allow, None).unwrap().0.to_string(), "192.168.1.20/32");
        assert_eq!(parse_allow(" 127.0.0.0/8", &allow, None), Err(Duplicate("127.0.0.0/8".into()).into()));
        assert!(parse_allow("127.0.0.0/8", &allow, Some(0)).is_ok());
        assert_eq!(FieldError::from(Duplicate("127.0.0.0/8".into())).to_string(), "127.0.0.0/8 is already in the list");
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
        let targets = Targets::one(target("127.0.0.1:5006"));
        let mut list = TextList { adding: "127.0.0.1:70000".into(), ..TextList::default() };
        assert_eq!(list.commit_add(|t| parse_target(t, &targets, None)), None);
        assert_eq!(list.add_error, Some(AddressError::PortRange("70000".into()).into()));
        assert_eq!(list.adding, "127.0.0.1:70000", "the text stays for fixing");
        list.adding = "127.0.0.1:7000".into();
        assert_eq!(list.commit_add(|t| parse_target(t, &targets, None)), Some(ListEdit::Add(target("127.0.0.1:7000"))));
        assert_eq!((list.adding.as_str(), list.add_error.clone()), ("", None));

        assert_eq!(list.commit_edit(|t, i| parse_target(t, &targets, Some(i))), None, "nothing being edited");
        list.start_edit(0, "127.0.0.1:5006".into());
        list.editing.as_mut().unwrap().1 = "localhost:1".into();
        assert_eq!(list.commit_edit(|t, i| parse_target(t, &targets, Some(i))), None);
        assert_eq!(list.editing.as_ref().unwrap().2, Some(AddressError::HostName("localhost".into()).into()));
        list.editing.as_mut().unwrap().1 = "127.0.0.1:5007".into();
        assert_eq!(
            list.commit_edit(|t, i| parse_target(t, &targets, Some(i))),
            Some(ListEdit::Replace(0, target("127.0.0.1:5007")))
        );
        assert_eq!(list.editing, None);
    }
}
