//! What the OSC Timecode plugin and client share: exact timecode arithmetic, the audio-side
//! frame clock, and the OSC wire format. No I/O and no plugin framework.
//!
//! Contract: everything the audio thread calls ([`send::SendPolicy`],
//! [`clock::FrameClock::process_block`], [`timecode::Timecode::from_frame`],
//! [`timecode::Timecode::label`], the sample ↔ frame functions) is integer arithmetic on the
//! stack: no allocation, lock, syscall or panic.
//!
//! Data flow in the plugin:
//! 1. [`clock::FrameClock`] turns each host block (transport position, play state, block length)
//!    into the frames that start inside it, with their sample offsets and jump/loop flags;
//! 2. [`send::SendPolicy`] decides which of them are sent (output on, offline render, "Send While
//!    Stopped"), and the plugin pushes those as [`clock::FrameEvent`]s through a lock-free ring to
//!    its network thread;
//! 3. the network thread turns it into a [`protocol::TimecodeMessage`] and encodes it as an OSC
//!    bundle with [`protocol`].
//!
//! Receivers rebuild the master's timeline from those bundles with [`chase::Chase`] (timetags
//! and frame counts, not arrival times).
//!
//! Cues flow the other way: [`cue`] reads `/cue/...` and `/trigger/...` packets (shape, allow-list,
//! token, arguments, retries) and writes the `/ack` and `/status` replies, never more bytes to a
//! sender than it sent ([`reply`]).

#![forbid(unsafe_code)]

pub mod artnet;
pub mod carriage;
pub mod chase;
pub mod clock;
pub mod clocksync;
pub mod config;
pub mod cue;
pub mod ltc;
pub mod mtc;
pub mod pattern;
pub mod protocol;
pub mod rate;
pub mod reply;
pub mod send;
pub mod span;
pub mod timecode;

pub use rate::{FrameRate, HostRate, RateError};
pub use timecode::{Label, Timecode, TimecodeError};
