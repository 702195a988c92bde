//! Values the editor's unit tests share.

use std::net::SocketAddr;
use std::time::Instant;

use osc_timecode_core::FrameRate;
use osc_timecode_core::cue::{AckStatus, MAX_FANOUT};

use crate::readout::{Position, ReadoutSnapshot, RecentCue, ShortText};
use crate::settings::cues::CueAction;

pub(super) fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

pub(super) fn snapshot(active: bool, offline: bool, playing: Option<bool>, has_position: bool) -> ReadoutSnapshot {
    ReadoutSnapshot {
        position: playing.map(|playing| Position { frame: 0, rate: FrameRate::FPS_25, playing }),
        blocks: 1,
        has_position,
        active,
        offline,
        sample_rate: 48_000,
        host_rate: None,
        refused_rate: None,
    }
}

pub(super) fn recent(number: u64, address: &str, status: AckStatus, action: Option<CueAction>) -> RecentCue {
    let mut actions = [None; MAX_FANOUT];
    actions[0] = action;
    RecentCue {
        number,
        at: Instant::now(),
        from: addr("127.0.0.1:9"),
        address: ShortText::new(address),
        timetagged: false,
        status,
        actions,
    }
}
