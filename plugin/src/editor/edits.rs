//! Changes the window makes to the settings: a row added, replaced or removed, a value set.
//! Applied under the settings' write lock; a row that vanished under the window (a project
//! load) is refused, not guessed. `[gui-thread]`.

use crate::settings::Settings;
use crate::settings::cues::Mapping;
use crate::settings::values::{AllowEntry, ListenAddress, Target, Token};

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
    Targets(ListEdit<Target>),
    /// The cue input's listen address.
    Listen(ListenAddress),
    /// The cue input on or off.
    CueEnabled(bool),
    /// The allow-list.
    Allow(ListEdit<AllowEntry>),
    /// The token (`None`: no token).
    Token(Option<Token>),
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
    use crate::editor::mapping::MappingDraft;

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
        let a: Target = "10.0.0.5:9000".parse().unwrap();
        SettingsEdit::Targets(ListEdit::Add(a)).apply(&mut s).unwrap();
        assert_eq!(s.targets, [crate::settings::DEFAULT_TARGET, a]);
        SettingsEdit::Targets(ListEdit::Remove(0)).apply(&mut s).unwrap();
        assert_eq!(s.targets, [a]);
        let listen: ListenAddress = "0.0.0.0:7000".parse().unwrap();
        SettingsEdit::Listen(listen).apply(&mut s).unwrap();
        assert_eq!(s.cues.listen, listen);
        SettingsEdit::CueEnabled(false).apply(&mut s).unwrap();
        assert!(!s.cues.enabled);
        let entry: AllowEntry = "10.0.0.0/8".parse().unwrap();
        SettingsEdit::Allow(ListEdit::Replace(0, entry)).apply(&mut s).unwrap();
        assert_eq!(s.cues.allow[0], entry);
        SettingsEdit::Token(Some("t".parse().unwrap())).apply(&mut s).unwrap();
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
