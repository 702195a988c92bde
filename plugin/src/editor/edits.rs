//! Changes the window makes to the settings: a row added, replaced or removed, a value set.
//! Applied under the settings' write lock; a row that vanished under the window (a project
//! load) is refused, not guessed. `[gui-thread]`.

use std::net::SocketAddr;

use crate::cues::map::{AllowEntry, Mapping};
use crate::settings::Settings;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cues::map::AllowEntry;
    use crate::editor::fixtures::addr;
    use crate::editor::mapping::MappingDraft;
    use osc_timecode_core::cue::parse_allow_entry;

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
}
