//! The cue map's rows as they are typed (a draft of text fields per mapping, each refused with its
//! reason), and Learn, which takes the address from the next cue that arrives. `[gui-thread]`.

use super::fields::{FieldError, parse_mapped_address};
use crate::params::ParamRef;
use crate::readout::RecentCue;
use crate::settings::cues::{CueAction, Mapping, Mappings};
use crate::settings::values::{Channel, Normalized, NoteLength, PlainAddressError, RampMs, U7};

/// What a mapping can do: the MIDI event kinds, and setting a parameter.
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
    /// One of the plugin's parameters (a Cue Macro, `output`, ...).
    Param,
}

impl Kind {
    /// Every kind, in menu order.
    pub const ALL: [Self; 5] = [Self::Note, Self::NoteOff, Self::Cc, Self::Program, Self::Param];

    /// The menu text.
    pub fn label(self) -> &'static str {
        match self {
            Self::Note => "note",
            Self::NoteOff => "note off",
            Self::Cc => "CC",
            Self::Program => "program",
            Self::Param => "parameter",
        }
    }

    /// What the number field means (for `Param`: the parameter's ID).
    pub fn number_label(self) -> &'static str {
        match self {
            Self::Note | Self::NoteOff => "key",
            Self::Cc => "controller",
            Self::Program => "program",
            Self::Param => "param",
        }
    }

    /// What the value field means, if this kind has one.
    pub fn value_label(self) -> Option<&'static str> {
        match self {
            Self::Note => Some("velocity"),
            Self::Cc => Some("value"),
            Self::Param => Some("value 0–1"),
            Self::NoteOff | Self::Program => None,
        }
    }

    /// What the length field means, if this kind has one: a note's length, a parameter's ramp.
    pub fn length_label(self) -> Option<&'static str> {
        match self {
            Self::Note => Some("ms"),
            Self::Param => Some("ramp ms"),
            _ => None,
        }
    }

    /// Whether this kind sends on a MIDI channel.
    pub fn has_channel(self) -> bool {
        self != Self::Param
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
    /// Velocity or value 0–127 (notes and CCs); a parameter's value 0.0–1.0, empty for the
    /// cue's VALUE.
    pub value: String,
    /// Note length in ms (notes; 0 holds the note), or a parameter's ramp in ms (0: at once).
    pub length_ms: String,
}

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
            CueAction::Note { channel, key, velocity, length_ms } => Self {
                kind: Kind::Note,
                channel: text(channel.into()),
                number: text(key.get()),
                value: text(velocity.get()),
                length_ms: length_ms.to_string(),
                ..base
            },
            CueAction::NoteOff { channel, key } => {
                Self { kind: Kind::NoteOff, channel: text(channel.into()), number: text(key.get()), ..base }
            }
            CueAction::Cc { channel, number, value } => Self {
                kind: Kind::Cc,
                channel: text(channel.into()),
                number: text(number.get()),
                value: text(value.get()),
                ..base
            },
            CueAction::Program { channel, program } => {
                Self { kind: Kind::Program, channel: text(channel.into()), number: text(program.get()), ..base }
            }
            CueAction::Param { param, value, ramp_ms } => Self {
                kind: Kind::Param,
                number: param.id().into(),
                value: value.map_or_else(String::new, |v| v.to_string()),
                length_ms: ramp_ms.to_string(),
                ..base
            },
        }
    }

    /// The mapping, if every field is valid and the address is not mapped already (but by the
    /// row at `editing`); else every refused field with its reason. Each field is read by its
    /// value's type and the address checked by the table's, so the reasons are those the config
    /// file's and a project state's errors give.
    pub fn to_mapping(&self, map: &Mappings, editing: Option<usize>) -> Result<Mapping, MappingErrors> {
        let mut errors = Vec::new();
        let kind = self.kind;
        if kind == Kind::Param {
            return self.to_param_mapping(map, editing);
        }
        let channel = check(&mut errors, MappingField::Channel, self.channel.parse::<Channel>());
        let number = check(&mut errors, MappingField::Number, self.number.parse::<U7>());
        let value = match kind.value_label() {
            Some(_) => check(&mut errors, MappingField::Value, self.value.parse::<U7>()),
            None => Some(U7::MIN),
        };
        let length_ms = match kind == Kind::Note {
            true => check(&mut errors, MappingField::Length, self.length_ms.parse::<NoteLength>()),
            false => Some(NoteLength::HELD),
        };
        let address = parse_mapped_address(&self.address)
            .and_then(|a| map.refuse_key(&a, editing).map(|()| a).map_err(FieldError::from));
        let address = check(&mut errors, MappingField::Address, address);
        let (Some(address), Some(channel), Some(n), Some(v), Some(length_ms)) =
            (address, channel, number, value, length_ms)
        else {
            return Err(errors);
        };
        let action = match kind {
            Kind::Note => CueAction::Note { channel, key: n, velocity: v, length_ms },
            Kind::NoteOff => CueAction::NoteOff { channel, key: n },
            Kind::Cc => CueAction::Cc { channel, number: n, value: v },
            Kind::Program => CueAction::Program { channel, program: n },
            Kind::Param => return self.to_param_mapping(map, editing),
        };
        Ok(Mapping { address, action })
    }

    /// [`Self::to_mapping`] for a `param` row: the parameter's ID, an optional value 0.0–1.0,
    /// a ramp in ms.
    fn to_param_mapping(&self, map: &Mappings, editing: Option<usize>) -> Result<Mapping, MappingErrors> {
        let mut errors = Vec::new();
        let param = check(&mut errors, MappingField::Number, self.number.parse::<ParamRef>());
        let value = match self.value.trim() {
            "" => Some(None),
            text => check(&mut errors, MappingField::Value, text.parse::<Normalized>().map_err(FieldError::ParamValue))
                .map(Some),
        };
        let ramp_ms = match self.length_ms.trim() {
            "" => Some(RampMs::MIN),
            text => check(&mut errors, MappingField::Length, text.parse::<RampMs>()),
        };
        let address = parse_mapped_address(&self.address)
            .and_then(|a| map.refuse_key(&a, editing).map(|()| a).map_err(FieldError::from));
        let address = check(&mut errors, MappingField::Address, address);
        let (Some(address), Some(param), Some(value), Some(ramp_ms)) = (address, param, value, ramp_ms) else {
            return Err(errors);
        };
        Ok(Mapping { address, action: CueAction::Param { param, value, ramp_ms } })
    }
}

/// `result`'s value, or `None` with its error noted against `field`.
fn check<T, E: Into<FieldError>>(errors: &mut MappingErrors, field: MappingField, result: Result<T, E>) -> Option<T> {
    result.map_err(|e| errors.push((field, e.into()))).ok()
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
            return Some(Err(PlainAddressError::TooLong.into()));
        }
        Some(parse_mapped_address(cue.address.as_str()).map(String::from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::editor::fixtures::recent;
    use crate::settings::values::{Duplicate, MAX_NOTE_LENGTH_MS};
    use osc_timecode_core::cue::AckStatus;

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
            draft("/show/stop", Kind::Param, "", "output", "0", "0"),
            draft("/show/fade", Kind::Param, "", "macro3", "", "2500"),
        ] {
            let m = d.to_mapping(&Mappings::default(), None).unwrap_or_else(|e| panic!("{d:?}: {e:?}"));
            let back = MappingDraft::from_mapping(&m);
            assert_eq!(back.to_mapping(&Mappings::default(), None).unwrap(), m);
            assert_eq!((back.address.as_str(), back.kind), (d.address.as_str(), d.kind));
        }
        let bad =
            draft("/cue/*", Kind::Note, "17", "128", "x", "-1").to_mapping(&Mappings::default(), None).unwrap_err();
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
        assert_eq!(reasons[0], "the MIDI channel is 1-16, not 17");
        assert_eq!(reasons[1], "a MIDI key, velocity, controller, value or program is 0-127, not 128");
        assert_eq!(reasons[2], "a MIDI key, velocity, controller, value or program is a whole number, 0-127");
        assert_eq!(reasons[3], "a note length is 0-600000 ms (0 holds the note), not -1");
        let bad = draft("/p", Kind::Param, "x", "volume", "1.5", "600001").to_mapping(&Mappings::default(), None);
        let reasons: Vec<String> = bad.unwrap_err().iter().map(|(_, e)| e.to_string()).collect();
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert!(reasons[0].starts_with(r#"no parameter has the ID "volume" (the IDs are rate, output"#), "{reasons:?}");
        assert_eq!(reasons[1], "a parameter value is 0.0-1.0 (normalized), not \"1.5\"");
        assert_eq!(reasons[2], "a ramp is 0-600000 ms (0 sets the value at once), not 600001");
        // Fields a kind does not use are not checked.
        assert!(draft("/p", Kind::Program, "1", "5", "junk", "junk").to_mapping(&Mappings::default(), None).is_ok());
        assert!(
            draft("/n", Kind::Note, "1", "5", "1", &(MAX_NOTE_LENGTH_MS + 1).to_string())
                .to_mapping(&Mappings::default(), None)
                .is_err()
        );
        // One address, one mapping.
        let existing = Mappings::one(
            draft("/cue/go", Kind::Note, "1", "1", "1", "1").to_mapping(&Mappings::default(), None).unwrap(),
        );
        let again = draft("/cue/go", Kind::Cc, "1", "1", "1", "1");
        assert_eq!(
            again.to_mapping(&existing, None).unwrap_err(),
            [(MappingField::Address, Duplicate("/cue/go".into()).into())]
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
        assert_eq!(learn.take(&[pattern]), Some(Err(PlainAddressError::Pattern("/show/*".into()).into())));
        let long = recent(6, &format!("/{}", "a".repeat(400)), AckStatus::Unmapped, None);
        assert_eq!(learn.take(&[long]), Some(Err(PlainAddressError::TooLong.into())));
    }
}
