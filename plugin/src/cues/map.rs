//! The runtime matcher: the mapped addresses (named mappings and the `/cue/N`, `/trigger/N`
//! defaults) ready for OSC 1.0 pattern matching on the cue thread. The settings it is built
//! from, and the value types they hold, are in [`crate::settings::cues`].

use std::collections::HashMap;

use osc_timecode_core::cue::{ArgError, MAX_FANOUT, describe, split_cue_args};
use osc_timecode_core::pattern;
use osc_timecode_core::protocol::address::{CUE_PREFIX, TRIGGER_PREFIX};

use rosc::OscType;

use crate::params::{MACROS, ParamRef};
use crate::settings::cues::{CueAction, CueSettings};
use crate::settings::values::{Channel, MAX_PATTERN_LEN, Normalized, RampMs, U7};

/// The numbers `/cue/N` and `/trigger/N` take by default: 0–127.
pub const DEFAULT_NUMBERS: u8 = 128;

/// The address prefix of the Cue Macro defaults: `/macro/N VALUE` sets Cue Macro N (1–8).
pub const MACRO_PREFIX: &str = "/macro/";

/// A cue's VALUE as a parameter takes it: an int 0–127 (÷ 127) or a float 0.0–1.0 exactly;
/// `None` when the cue carries none (absent or nil). Anything else is [`ArgError::BadValue`],
/// as [`osc_timecode_core::cue::parse_cue_args`] refuses it for MIDI.
pub fn unit_value(args: &[OscType], token: Option<&str>) -> Result<Option<Normalized>, ArgError> {
    let (value, _) = split_cue_args(args, token)?;
    match value {
        None | Some(OscType::Nil) => Ok(None),
        Some(OscType::Int(i)) if (0..=127).contains(i) => Ok(Normalized::new(*i as f32 / 127.0)),
        Some(OscType::Float(f)) => {
            Normalized::new(*f).map(Some).ok_or_else(|| ArgError::BadValue(describe(&OscType::Float(*f))))
        }
        Some(other) => Err(ArgError::BadValue(describe(other))),
    }
}

/// Why an address maps to nothing usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unresolved {
    /// No mapped address matches.
    Unmapped,
    /// More than [`MAX_FANOUT`] match, or finding out what matches costs more steps than the
    /// datagram has left ([`pattern::DATAGRAM_STEP_BUDGET`]): acked `too_broad` either way.
    TooBroad,
}

/// The mapped addresses, ready for matching. `[cue-thread]`: built from the settings when they
/// change (it allocates).
#[derive(Debug)]
pub struct CueMap {
    /// Named entries and the defaults they do not replace, in matching order.
    entries: Vec<(String, CueAction)>,
    /// The same, by address, for plain (non-pattern) addresses.
    exact: HashMap<String, CueAction>,
}

impl CueMap {
    /// The map for `settings`.
    pub fn new(settings: &CueSettings) -> Self {
        let mut entries = Vec::new();
        let mut exact = HashMap::new();
        let mut add = |address: String, action: CueAction| {
            // Named addresses are unique (`settings::cues::Mappings` refuses a second), so what
            // is skipped here is a default that a named entry replaces.
            if exact.contains_key(&address) {
                return;
            }
            entries.push((address.clone(), action));
            exact.insert(address, action);
        };
        for m in &settings.map {
            add(m.address.as_str().to_owned(), m.action);
        }
        if settings.defaults {
            for n in 0..DEFAULT_NUMBERS {
                // `n` < DEFAULT_NUMBERS = 128: always a 7-bit value.
                let Some(key) = U7::new(n) else { continue };
                add(
                    format!("{CUE_PREFIX}{n}"),
                    CueAction::Note {
                        channel: Channel::ONE,
                        key,
                        velocity: U7::MAX,
                        length_ms: settings.note_length_ms,
                    },
                );
                add(
                    format!("{TRIGGER_PREFIX}{n}"),
                    CueAction::Cc { channel: Channel::ONE, number: key, value: U7::MAX },
                );
            }
            for index in 0..MACROS {
                let Some(param) = ParamRef::cue_macro(index) else { continue };
                add(
                    format!("{MACRO_PREFIX}{}", index + 1),
                    CueAction::Param { param, value: None, ramp_ms: RampMs::MIN },
                );
            }
        }
        Self { entries, exact }
    }

    /// The actions `pattern` selects (OSC 1.0 matching), appended to `out` in table order.
    /// Matching draws on `budget` (steps, shared by every message of a datagram): when it runs
    /// out, the pattern is [`Unresolved::TooBroad`] and nothing is appended.
    pub fn resolve(&self, pattern: &str, out: &mut Vec<CueAction>, budget: &mut u32) -> Result<(), Unresolved> {
        if pattern.len() > MAX_PATTERN_LEN {
            return Err(Unresolved::Unmapped);
        }
        if !pattern::is_pattern(pattern) {
            let action = self.exact.get(pattern).ok_or(Unresolved::Unmapped)?;
            out.push(*action);
            return Ok(());
        }
        if pattern::validate(pattern).is_err() {
            return Err(Unresolved::Unmapped);
        }
        let mut found = 0;
        for (address, action) in &self.entries {
            let Some(matched) = pattern::matches_within(pattern, address, budget) else {
                out.clear();
                return Err(Unresolved::TooBroad);
            };
            if matched {
                found += 1;
                if found > MAX_FANOUT {
                    out.clear();
                    return Err(Unresolved::TooBroad);
                }
                out.push(*action);
            }
        }
        if found == 0 { Err(Unresolved::Unmapped) } else { Ok(()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::cues::fixtures::{ch, note, u7};

    fn resolve(map: &CueMap, pattern: &str) -> Result<Vec<CueAction>, Unresolved> {
        let mut out = Vec::new();
        map.resolve(pattern, &mut out, &mut pattern::DATAGRAM_STEP_BUDGET.clone()).map(|()| out)
    }

    #[test]
    fn defaults_map_cues_to_notes_and_triggers_to_ccs() {
        let map = CueMap::new(&CueSettings::default());
        assert_eq!(resolve(&map, "/cue/0"), Ok(vec![note(1, 0, 127, 100)]));
        assert_eq!(resolve(&map, "/cue/127"), Ok(vec![note(1, 127, 127, 100)]));
        assert_eq!(
            resolve(&map, "/trigger/7"),
            Ok(vec![CueAction::Cc { channel: ch(1), number: u7(7), value: u7(127) }])
        );
        for unmapped in ["/cue/128", "/cue/007", "/cue/-1", "/cue/", "/cue", "/foo", "/trigger/x", "cue/1", ""] {
            assert_eq!(resolve(&map, unmapped), Err(Unresolved::Unmapped), "{unmapped}");
        }
        let off = CueMap::new(&CueSettings { defaults: false, ..CueSettings::default() });
        assert_eq!(resolve(&off, "/cue/1"), Err(Unresolved::Unmapped));
    }

    #[test]
    fn macro_defaults_set_macro_1_to_8_from_the_cues_value() {
        let map = CueMap::new(&CueSettings::default());
        for n in 1..=8 {
            let param = ParamRef::cue_macro(n - 1).unwrap();
            assert_eq!(
                resolve(&map, &format!("/macro/{n}")),
                Ok(vec![CueAction::Param { param, value: None, ramp_ms: RampMs::MIN }])
            );
        }
        for other in ["/macro/0", "/macro/9", "/macro/01", "/macro/1/", "/macro/", "/macro", "/macro/1x"] {
            assert_eq!(resolve(&map, other), Err(Unresolved::Unmapped), "{other:?}");
        }
        assert_eq!(resolve(&map, "/macro/*").unwrap().len(), 8);
    }

    #[test]
    fn parameter_values_are_int_0_127_or_float_0_1_and_nothing_else() {
        let ok = |args: Vec<OscType>, token| unit_value(&args, token).unwrap().map(Normalized::get);
        assert_eq!(ok(vec![OscType::Float(0.5)], None), Some(0.5));
        assert_eq!(ok(vec![OscType::Int(127), OscType::Int(9)], None), Some(1.0));
        assert_eq!(ok(vec![OscType::Int(0)], None), Some(0.0));
        assert_eq!(ok(vec![OscType::String("t".into()), OscType::Float(1.0)], Some("t")), Some(1.0));
        assert_eq!(ok(vec![], None), None);
        assert_eq!(ok(vec![OscType::Nil, OscType::Int(3)], None), None);
        for bad in [
            vec![OscType::Int(128)],
            vec![OscType::Int(-1)],
            vec![OscType::Float(1.01)],
            vec![OscType::Float(f32::NAN)],
            vec![OscType::Float(-0.1)],
            vec![OscType::Double(0.5)],
            vec![OscType::String("0.5".into())],
            vec![OscType::Float(0.5), OscType::Float(1.0)],
            vec![OscType::Float(0.5), OscType::Int(1), OscType::Int(2)],
        ] {
            let err = unit_value(&bad, None).expect_err(&format!("{bad:?} must be refused"));
            assert!(!err.is_token(), "{bad:?}: a bad argument, not a token failure");
        }
        let token = unit_value(&[OscType::Float(0.5)], Some("t")).unwrap_err();
        assert!(token.is_token(), "a missing token is a token failure");
    }

    #[test]
    fn patterns_match_osc_1_0_and_fan_out_is_bounded() {
        let map = CueMap::new(&CueSettings::default());
        assert_eq!(resolve(&map, "/cue/{1,2}").unwrap(), vec![note(1, 1, 127, 100), note(1, 2, 127, 100)]);
        assert_eq!(resolve(&map, "/cue/1[0-2]").unwrap().len(), 3);
        assert_eq!(resolve(&map, "/cue/12?").unwrap().len(), 8, "120..=127");
        assert_eq!(resolve(&map, "/cue/1[!0-9]"), Err(Unresolved::Unmapped));
        assert_eq!(resolve(&map, "/cue/*"), Err(Unresolved::TooBroad));
        assert_eq!(resolve(&map, "/*/1").unwrap().len(), 3, "/cue/1, /trigger/1 and /macro/1");
        assert_eq!(resolve(&map, "/cue/[").unwrap_err(), Unresolved::Unmapped, "a bad pattern matches nothing");
        assert_eq!(resolve(&map, &format!("/cue/{}", "*".repeat(300))), Err(Unresolved::Unmapped));
    }

    #[test]
    fn named_entries_come_first_and_replace_defaults() {
        let settings: CueSettings = serde_json::from_str(
            r#"{"map": [
                {"address": "/cue/intro", "kind": "note", "channel": 2, "key": 60, "velocity": 100, "length_ms": 250},
                {"address": "/cue/5", "kind": "program", "channel": 3, "program": 9},
                {"address": "/x/off", "kind": "note_off", "channel": 1, "key": 60},
                {"address": "/x/cc", "kind": "cc", "channel": 16, "number": 20}
            ]}"#,
        )
        .unwrap();
        let map = CueMap::new(&settings);
        assert_eq!(resolve(&map, "/cue/intro").unwrap(), vec![note(2, 60, 100, 250)]);
        assert_eq!(resolve(&map, "/cue/5").unwrap(), vec![CueAction::Program { channel: ch(3), program: u7(9) }]);
        assert_eq!(
            resolve(&map, "/x/cc").unwrap(),
            vec![CueAction::Cc { channel: ch(16), number: u7(20), value: u7(127) }]
        );
        assert_eq!(resolve(&map, "/cue/in*").unwrap(), vec![note(2, 60, 100, 250)]);
    }
}
