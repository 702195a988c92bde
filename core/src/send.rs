//! The send policy: which of a host block's frames the plugin queues for its network thread.
//!
//! It owns the [`FrameClock`] and the few flags that decide, block by block, what receivers hear,
//! so `process()` only reads the host and moves messages. Plain data for the audio thread: no
//! heap, lock, I/O or panic (`tests/send.rs` runs every rule under a counting allocator).
//!
//! The rules, in the order [`SendPolicy::begin_block`] and [`Block::frames`] apply them:
//! 1. **Settings**: the frame rate and start offset are applied to the clock every block; a change
//!    is a discontinuity ([`FrameClock::set_rate`]).
//! 2. **The sending gate**: frames are sent while the output is on, unless the host renders
//!    offline and the policy is silent ([`Render::OfflineSilent`]). When sending starts again the
//!    clock re-syncs, so receivers get the first frame flagged as a jump.
//! 3. **The host's sample rate**: a VST3 host may change it through `setupProcessing()` without
//!    deactivating (against the spec; nice-plug passes it on), and positions then count at the new
//!    rate. The clock follows (a new clock: a discontinuity). To a rate the clock cannot use
//!    ([`usable_sample_rate`]) it does not: its positions would be read at the old rate, so the
//!    block has no position (nothing is reported) and [`Block::sample_rate_refused`] says so.
//! 4. **Per frame**: every frame the clock reports goes to the caller (cues quantise to frames
//!    whether or not they are sent); it is queued when sending and playing, or stopped with
//!    "Send While Stopped" on, or stopped right after a queued playing frame: with the setting
//!    off, receivers still hear the moment of stopping, once.

use crate::clock::{BlockInput, FrameClock, FrameEvent, usable_sample_rate};
use crate::rate::FrameRate;

/// How the host processes, fixed for an activation (hosts re-activate on a change of mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Render {
    /// In real time: frames are sent at their due time.
    Realtime,
    /// Offline (a bounce) with the `silent` policy: nothing is sent. A bounce runs faster than
    /// real time, and timecode from it would flood receivers with frames they cannot follow.
    OfflineSilent,
    /// Offline with the `realtime` policy: frames are sent, paced at real time by the network
    /// thread.
    OfflinePaced,
}

/// The plugin's settings for one block, read from its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendSettings {
    /// The frame rate frames count in.
    pub rate: FrameRate,
    /// The start offset: frames (at `rate`) added to the timeline's frame.
    pub offset_frames: i64,
    /// The output is on ("Output" parameter).
    pub output: bool,
    /// Stopped positions are sent too ("Send While Stopped" parameter).
    pub send_stopped: bool,
}

/// What the host says about one block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HostBlock {
    /// The host's sample rate for this block, Hz, as it reports it (any value, NaN included).
    pub sample_rate: f64,
    /// The transport is rolling.
    pub playing: bool,
    /// Timeline position of the block's first sample, in samples at `sample_rate`; `None` if the
    /// host gave none.
    pub position: Option<i64>,
    /// Active loop range `[start, end)`, in samples, if the host reports one.
    pub loop_range: Option<(i64, i64)>,
    /// Samples in the block.
    pub len: u32,
}

/// One frame of a block and whether it is queued for sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedFrame {
    /// The frame, as the clock reports it.
    pub event: FrameEvent,
    /// Queue it for the network thread.
    pub queue: bool,
}

/// The send policy of one plugin instance. `[audio-thread]` throughout, except
/// [`SendPolicy::new`] and [`SendPolicy::reactivate`] (`[main-thread]`, in `activate()`).
#[derive(Debug, Clone)]
pub struct SendPolicy {
    /// Frame detection at the current sample rate (Hz), frame rate and offset.
    clock: FrameClock,
    /// How the host processes in this activation.
    render: Render,
    /// Frames were being sent in the previous block (false after an activation).
    was_sending: bool,
    /// The last frame queued was a playing one, so the moment of stopping is still owed to
    /// receivers. Kept across a re-activation: a stop found after one is still sent.
    stop_owed: bool,
}

impl SendPolicy {
    /// `[main-thread]` The policy for a new activation at `sample_rate` Hz (a usable one, see
    /// [`usable_sample_rate`]) with the plugin's current `settings`.
    pub fn new(sample_rate: u32, settings: SendSettings, render: Render) -> Self {
        Self {
            clock: FrameClock::new(sample_rate, settings.rate, settings.offset_frames),
            render,
            was_sending: false,
            stop_owed: false,
        }
    }

    /// `[main-thread]` Starts over for a new activation, as [`SendPolicy::new`], except that a
    /// stop owed to receivers from before is still owed.
    pub fn reactivate(&mut self, sample_rate: u32, settings: SendSettings, render: Render) {
        *self = Self { stop_owed: self.stop_owed, ..Self::new(sample_rate, settings, render) };
    }

    /// Forgets continuity (the host's `reset()`): the next block's frame is a jump.
    pub fn resync(&mut self) {
        self.clock.resync();
    }

    /// The clock's sample rate, Hz.
    pub fn sample_rate(&self) -> u32 {
        self.clock.sample_rate()
    }

    /// The frame clock: its rate, start offset and the last block's spans
    /// ([`FrameClock::spans`]), which the audio outputs (LTC, MTC) render from after
    /// [`Block::frames`]. Spans do not depend on the sending gate: audio outputs decide for
    /// themselves.
    pub fn clock(&self) -> &FrameClock {
        &self.clock
    }

    /// Applies `settings`, the sending gate and the host's sample rate (rules 1 to 3), and
    /// returns the block, ready for [`Block::frames`].
    pub fn begin_block(&mut self, settings: SendSettings, host: HostBlock) -> Block<'_> {
        self.clock.set_rate(settings.rate, settings.offset_frames);
        let sending = settings.output && self.render != Render::OfflineSilent;
        if sending && !self.was_sending {
            self.clock.resync();
        }
        self.was_sending = sending;
        let host_rate = usable_sample_rate(host.sample_rate);
        if let Some(hz) = host_rate
            && hz != self.clock.sample_rate()
        {
            self.clock = FrameClock::new(hz, settings.rate, settings.offset_frames);
        }
        let input = BlockInput {
            playing: host.playing,
            position: host.position.filter(|_| host_rate.is_some()),
            loop_range: host.loop_range,
            len: host.len,
        }
        .usable();
        Block {
            policy: self,
            input,
            sending,
            send_stopped: settings.send_stopped,
            sample_rate_refused: host_rate.is_none(),
        }
    }
}

/// One block under way: what the policy made of the host's, until its frames are reported.
#[derive(Debug)]
pub struct Block<'a> {
    /// The policy, borrowed until [`Block::frames`].
    policy: &'a mut SendPolicy,
    /// The block as the clock reads it.
    input: BlockInput,
    /// Frames are sent in this block (rule 2).
    sending: bool,
    /// "Send While Stopped" in this block.
    send_stopped: bool,
    /// The host's sample rate is one the clock cannot use.
    sample_rate_refused: bool,
}

impl Block<'_> {
    /// The sample rate the block's frames are placed at, Hz.
    pub fn sample_rate(&self) -> u32 {
        self.policy.clock.sample_rate()
    }

    /// Samples in the block.
    pub fn len(&self) -> u32 {
        self.input.len
    }

    /// The block has no samples.
    pub fn is_empty(&self) -> bool {
        self.input.len == 0
    }

    /// The block has a usable position (frames can be reported).
    pub fn has_position(&self) -> bool {
        self.input.position.is_some()
    }

    /// The host's sample rate is one the clock cannot use: the block has no position.
    pub fn sample_rate_refused(&self) -> bool {
        self.sample_rate_refused
    }

    /// Queued frames are paced at real time by the network thread ([`Render::OfflinePaced`]).
    pub fn paced(&self) -> bool {
        self.policy.render == Render::OfflinePaced
    }

    /// Reports the block's frames through `each`, in order, each with whether it is queued
    /// (rule 4), and returns the last of them.
    pub fn frames(self, mut each: impl FnMut(PlannedFrame)) -> Option<FrameEvent> {
        let Self { policy, input, sending, send_stopped, .. } = self;
        let stop_owed = &mut policy.stop_owed;
        let mut last = None;
        policy.clock.process_block(input, |event| {
            last = Some(event);
            let queue = sending && (event.playing || send_stopped || *stop_owed);
            if queue {
                *stop_owed = event.playing;
            }
            each(PlannedFrame { event, queue });
        });
        last
    }
}
