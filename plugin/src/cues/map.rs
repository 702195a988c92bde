//! The runtime matcher: the mapped addresses (named mappings and the `/cue/N`, `/trigger/N`
//! defaults) ready for OSC 1.0 pattern matching on the cue thread. The settings it is built
//! from, and the value types they hold, are in [`crate::settings::cues`].

use std::collections::HashMap;

use osc_timecode_core::cue::{ArgError, CueId, MAX_FANOUT, describe, split_cue_args};
use osc_timecode_core::pattern;
use osc_timecode_core::protocol::address::{CUE_PREFIX, TRIGGER_PREFIX};

use rosc::OscType;

use crate::params::MACROS;
use crate::settings::cues::{CueSettings, MidiAction};
use crate::settings::values::{Channel, MAX_PATTERN_LEN, U7};

/// The numbers `/cue/N` and `/trigger/N` take by default: 0–127.
pub const DEFAULT_NUMBERS: u8 = 128;

/// The address prefix of the Cue Macro defaults: `/macro/N VALUE` sets Cue Macro N (1–8).
pub const MACRO_PREFIX: &str = "/macro/";

/// The Cue Macro a plain address names: `/macro/1` → `Some(0)` … `/macro/8` → `Some(7)`; any
/// other address (patterns, `/macro/01`, `/macro/9`) → `None`.
pub fn macro_index(address: &str) -> Option<usize> {
    let n = address.strip_prefix(MACRO_PREFIX)?;
    match n.as_bytes() {
        [d @ b'1'..=b'8'] => Some(usize::from(d - b'1')).filter(|&i| i < MACROS),
        _ => None,
    }
}

/// `/macro/N [TOKEN] VALUE [ID]`: VALUE an int 0–127 (÷ 127) or a float 0.0–1.0, the
/// normalized value to set; ID as for cues. A macro needs its VALUE: absent, nil or anything
/// else is [`ArgError::BadValue`].
pub fn parse_macro_args(args: &[OscType], token: Option<&str>) -> Result<(f32, Option<CueId>), ArgError> {
    let (value, id) = split_cue_args(args, token)?;
    let value = match value {
        Some(OscType::Int(i)) if (0..=127).contains(i) => *i as f32 / 127.0,
        Some(OscType::Float(f)) if (0.0..=1.0).contains(f) => *f,
        None => return Err(ArgError::BadValue("no value".to_owned())),
        Some(other) => return Err(ArgError::BadValue(describe(other))),
    };
    Ok((value, id))
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
    entries: Vec<(String, MidiAction)>,
    /// The same, by address, for plain (non-pattern) addresses.
    exact: HashMap<String, MidiAction>,
}

impl CueMap {
    /// The map for `settings`.
    pub fn new(settings: &CueSettings) -> Self {
        let mut entries = Vec::new();
        let mut exact = HashMap::new();
        let mut add = |address: String, action: MidiAction| {
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
                    MidiAction::Note {
                        channel: Channel::ONE,
                        key,
                        velocity: U7::MAX,
                        length_ms: settings.note_length_ms,
                    },
                );
                add(
                    format!("{TRIGGER_PREFIX}{n}"),
                    MidiAction::Cc { channel: Channel::ONE, number: key, value: U7::MAX },
                );
            }
        }
        Self { entries, exact }
    }

    /// The actions `pattern` selects (OSC 1.0 matching), appended to `out` in table order.
    /// Matching draws on `budget` (steps, shared by every message of a datagram): when it runs
    /// out, the pattern is [`Unresolved::TooBroad`] and nothing is appended.
    pub fn resolve(&self, pattern: &str, out: &mut Vec<MidiAction>, budget: &mut u32) -> Result<(), Unresolved> {
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

    fn resolve(map: &CueMap, pattern: &str) -> Result<Vec<MidiAction>, Unresolved> {
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
            Ok(vec![MidiAction::Cc { channel: ch(1), number: u7(7), value: u7(127) }])
        );
        for unmapped in ["/cue/128", "/cue/007", "/cue/-1", "/cue/", "/cue", "/foo", "/trigger/x", "cue/1", ""] {
            assert_eq!(resolve(&map, unmapped), Err(Unresolved::Unmapped), "{unmapped}");
        }
        let off = CueMap::new(&CueSettings { defaults: false, ..CueSettings::default() });
        assert_eq!(resolve(&off, "/cue/1"), Err(Unresolved::Unmapped));
    }

    #[test]
    fn macro_addresses_are_macro_1_to_8_exactly() {
        for n in 1..=8 {
            assert_eq!(macro_index(&format!("/macro/{n}")), Some(n - 1));
        }
        for other in
            ["/macro/0", "/macro/9", "/macro/01", "/macro/1/", "/macro/", "/macro", "/macro/*", "/macro/1x", ""]
        {
            assert_eq!(macro_index(other), None, "{other:?}");
        }
    }

    #[test]
    fn macro_values_are_int_0_127_or_float_0_1_and_nothing_else() {
        let ok = |args: Vec<OscType>, token| parse_macro_args(&args, token).unwrap();
        assert_eq!(ok(vec![OscType::Float(0.5)], None), (0.5, None));
        assert_eq!(ok(vec![OscType::Int(127), OscType::Int(9)], None), (1.0, Some(CueId::Int(9))));
        assert_eq!(ok(vec![OscType::Int(0)], None).0, 0.0);
        assert_eq!(ok(vec![OscType::String("t".into()), OscType::Float(1.0)], Some("t")), (1.0, None));
        for bad in [
            vec![],
            vec![OscType::Nil],
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
            let err = parse_macro_args(&bad, None).expect_err(&format!("{bad:?} must be refused"));
            assert!(!err.is_token(), "{bad:?}: a bad argument, not a token failure");
        }
        let token = parse_macro_args(&[OscType::Float(0.5)], Some("t")).unwrap_err();
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
        assert_eq!(resolve(&map, "/*/1").unwrap().len(), 2, "/cue/1 and /trigger/1");
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
        assert_eq!(resolve(&map, "/cue/5").unwrap(), vec![MidiAction::Program { channel: ch(3), program: u7(9) }]);
        assert_eq!(
            resolve(&map, "/x/cc").unwrap(),
            vec![MidiAction::Cc { channel: ch(16), number: u7(20), value: u7(127) }]
        );
        assert_eq!(resolve(&map, "/cue/in*").unwrap(), vec![note(2, 60, 100, 250)]);
    }
}
