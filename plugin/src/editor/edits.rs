//! Changes the window makes to the settings: a row added, replaced or removed, a value set.
//! Applied under the settings' write lock; a row that vanished under the window (a project
//! load) is refused, not guessed, and so is a row the list already holds (the list's own rule,
//! [`UniqueList`]), or a row beyond what it may hold ([`ArtNetTargets`]). `[gui-thread]`.

use crate::settings::Settings;
use crate::settings::cues::Mapping;
use crate::settings::outputs::{ArtNetListError, ArtNetTarget, ArtNetTargets, LtcChannel, LtcLevel, LtcStopped};
use crate::settings::values::{AllowEntry, Duplicate, ListenAddress, StreamId, Target, Token, Unique, UniqueList};

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

/// Why a list edit was not applied. The window checks a row before it sends the edit, so
/// either means the list changed under the window (a project load).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditRefused {
    /// The row is gone.
    #[error("row {0} is no longer there")]
    StaleRow(usize),
    /// Another row holds the same value.
    #[error(transparent)]
    Duplicate(#[from] Duplicate),
    /// The list holds as many rows as it may.
    #[error(transparent)]
    Full(ArtNetListError),
}

impl From<ArtNetListError> for EditRefused {
    fn from(e: ArtNetListError) -> Self {
        match e {
            ArtNetListError::Duplicate(d) => Self::Duplicate(d),
            full @ ArtNetListError::TooMany(_) => Self::Full(full),
        }
    }
}

/// A list the window edits row by row, keeping the list's own rules.
pub trait RowList<T> {
    /// Appends `value`, or why not.
    fn push_row(&mut self, value: T) -> Result<(), EditRefused>;
    /// Replaces row `i`; `Ok(false)` if there is no row `i`.
    fn replace_row(&mut self, i: usize, value: T) -> Result<bool, EditRefused>;
    /// Removes row `i`, if there is one.
    fn remove_row(&mut self, i: usize) -> Option<T>;
}

impl<T: Unique> RowList<T> for UniqueList<T> {
    fn push_row(&mut self, value: T) -> Result<(), EditRefused> {
        Ok(self.push(value)?)
    }
    fn replace_row(&mut self, i: usize, value: T) -> Result<bool, EditRefused> {
        Ok(self.replace(i, value)?)
    }
    fn remove_row(&mut self, i: usize) -> Option<T> {
        self.remove(i)
    }
}

impl RowList<ArtNetTarget> for ArtNetTargets {
    fn push_row(&mut self, value: ArtNetTarget) -> Result<(), EditRefused> {
        Ok(self.push(value)?)
    }
    fn replace_row(&mut self, i: usize, value: ArtNetTarget) -> Result<bool, EditRefused> {
        Ok(self.replace(i, value)?)
    }
    fn remove_row(&mut self, i: usize) -> Option<ArtNetTarget> {
        self.remove(i)
    }
}

impl<T> ListEdit<T> {
    /// Applies the edit to `list`.
    pub fn apply(self, list: &mut impl RowList<T>) -> Result<(), EditRefused> {
        match self {
            Self::Add(value) => list.push_row(value)?,
            Self::Replace(i, value) => {
                if !list.replace_row(i, value)? {
                    return Err(EditRefused::StaleRow(i));
                }
            }
            Self::Remove(i) => {
                list.remove_row(i).ok_or(EditRefused::StaleRow(i))?;
            }
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
    /// 50, 59.94 and 60 fps as frame pairs on LTC, MTC and Art-Net.
    HalfRate(bool),
    /// The channel LTC replaces (off: no LTC).
    LtcChannel(LtcChannel),
    /// LTC's level.
    LtcLevel(LtcLevel),
    /// LTC while stopped.
    LtcStopped(LtcStopped),
    /// MTC on or off.
    MtcEnabled(bool),
    /// The Art-Net targets.
    ArtNetTargets(ListEdit<ArtNetTarget>),
    /// The Art-Net StreamId.
    ArtNetStream(StreamId),
}

impl SettingsEdit {
    /// Applies the edit to `settings`.
    pub fn apply(self, settings: &mut Settings) -> Result<(), EditRefused> {
        let cues = &mut settings.cues;
        match self {
            Self::Targets(edit) => edit.apply(&mut settings.targets)?,
            Self::Listen(addr) => cues.listen = addr,
            Self::CueEnabled(on) => cues.enabled = on,
            Self::Allow(edit) => edit.apply(&mut cues.allow)?,
            Self::Token(token) => cues.token = token,
            Self::Map(edit) => edit.apply(&mut cues.map)?,
            Self::HalfRate(on) => settings.half_rate = on,
            Self::LtcChannel(channel) => settings.ltc.channel = channel,
            Self::LtcLevel(level) => settings.ltc.level_dbfs = level,
            Self::LtcStopped(stopped) => settings.ltc.stopped = stopped,
            Self::MtcEnabled(on) => settings.mtc.enabled = on,
            Self::ArtNetTargets(edit) => edit.apply(&mut settings.artnet.targets)?,
            Self::ArtNetStream(id) => settings.artnet.stream_id = id,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::editor::mapping::MappingDraft;

    fn t(n: u16) -> Target {
        Target::new(std::net::SocketAddr::from(([127, 0, 0, 1], n))).unwrap()
    }

    #[test]
    fn list_edits_add_replace_and_remove_and_refuse_stale_rows_and_duplicates() {
        let mut list = UniqueList::new(vec![t(1), t(2), t(3)]).unwrap();
        ListEdit::Add(t(4)).apply(&mut list).unwrap();
        ListEdit::Replace(0, t(9)).apply(&mut list).unwrap();
        ListEdit::Replace(0, t(9)).apply(&mut list).unwrap();
        ListEdit::Remove(1).apply(&mut list).unwrap();
        assert_eq!(list, [t(9), t(3), t(4)]);
        assert_eq!(ListEdit::Remove(3).apply(&mut list), Err(EditRefused::StaleRow(3)));
        assert_eq!(ListEdit::Replace(5, t(1)).apply(&mut list), Err(EditRefused::StaleRow(5)));
        let again = Duplicate("127.0.0.1:3".into());
        assert_eq!(ListEdit::Add(t(3)).apply(&mut list), Err(again.clone().into()));
        assert_eq!(ListEdit::Replace(0, t(3)).apply(&mut list), Err(again.into()));
        assert_eq!(list, [t(9), t(3), t(4)]);
        assert_eq!(EditRefused::StaleRow(3).to_string(), "row 3 is no longer there");
        assert_eq!(EditRefused::from(Duplicate("x".into())).to_string(), "x is already in the list");
    }

    #[test]
    fn art_net_edits_keep_the_lists_rules() {
        use crate::settings::outputs::MAX_ARTNET_TARGETS;
        let a = |n: usize| format!("127.0.0.1:{}", 7000 + n).parse::<ArtNetTarget>().unwrap();
        let mut list = ArtNetTargets::default();
        for n in 0..MAX_ARTNET_TARGETS {
            ListEdit::Add(a(n)).apply(&mut list).unwrap();
        }
        let full = ArtNetListError::TooMany(MAX_ARTNET_TARGETS + 1);
        assert_eq!(ListEdit::Add(a(99)).apply(&mut list), Err(EditRefused::Full(full.clone())));
        assert_eq!(EditRefused::Full(full).to_string(), "at most 16 Art-Net targets, not 17");
        assert_eq!(ListEdit::Add(a(0)).apply(&mut list), Err(EditRefused::Full(ArtNetListError::TooMany(17))));
        ListEdit::Remove(0).apply(&mut list).unwrap();
        assert_eq!(ListEdit::Add(a(1)).apply(&mut list), Err(Duplicate("127.0.0.1:7001".into()).into()));
        assert_eq!(ListEdit::Replace(0, a(2)).apply(&mut list), Err(Duplicate("127.0.0.1:7002".into()).into()));
        assert_eq!(ListEdit::Replace(MAX_ARTNET_TARGETS, a(99)).apply(&mut list), Err(EditRefused::StaleRow(16)));
        ListEdit::Replace(0, a(99)).apply(&mut list).unwrap();
        assert_eq!(list[0], a(99));
        assert_eq!(list.len(), MAX_ARTNET_TARGETS - 1);
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
        let m = MappingDraft { address: "/cue/go".into(), ..MappingDraft::default() }
            .to_mapping(&crate::settings::cues::Mappings::default(), None)
            .unwrap();
        SettingsEdit::Map(ListEdit::Add(m.clone())).apply(&mut s).unwrap();
        assert_eq!((s.cues.map.len(), &s.cues.map[0]), (1, &m));
        assert_eq!(SettingsEdit::Map(ListEdit::Remove(1)).apply(&mut s), Err(EditRefused::StaleRow(1)));
        assert_eq!(
            SettingsEdit::Map(ListEdit::Add(m.clone())).apply(&mut s),
            Err(Duplicate("/cue/go".into()).into()),
            "one address, one mapping"
        );
        assert_eq!(s.cues.map, [m]);
        // The outputs.
        SettingsEdit::HalfRate(true).apply(&mut s).unwrap();
        SettingsEdit::LtcChannel(LtcChannel::Both).apply(&mut s).unwrap();
        SettingsEdit::LtcLevel(LtcLevel::new(-24.0).unwrap()).apply(&mut s).unwrap();
        SettingsEdit::LtcStopped(LtcStopped::Still).apply(&mut s).unwrap();
        SettingsEdit::MtcEnabled(true).apply(&mut s).unwrap();
        SettingsEdit::ArtNetStream(StreamId::MAX).apply(&mut s).unwrap();
        let art: ArtNetTarget = "127.0.0.1:6455".parse().unwrap();
        SettingsEdit::ArtNetTargets(ListEdit::Add(art)).apply(&mut s).unwrap();
        assert!(s.half_rate && s.mtc.enabled);
        assert_eq!(
            (s.ltc.channel, s.ltc.level_dbfs.dbfs(), s.ltc.stopped),
            (LtcChannel::Both, -24.0, LtcStopped::Still)
        );
        assert_eq!((&s.artnet.targets[..], s.artnet.stream_id), (&[art][..], StreamId::MAX));
        // What the window saves survives the project state round trip.
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(Settings::from_state(&json).unwrap(), s);
    }
}
