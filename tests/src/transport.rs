//! A small host transport model: play state, position in samples, loop range, tempo. It fills a
//! CLAP `clap_event_transport` (seconds AND beats timelines in CLAP fixed point) or a VST3
//! `ProcessContext` for the block about to be processed, then [`Transport::advance`]s.
//!
//! It also records what it played ([`Transport::history`]), so tests can derive the frames the
//! plugin must send from the samples that were actually heard, independently of how the plugin
//! computes them.
//!
//! Modes: one-sample wobble (the reported position alternates +1/−1 sample around the exact one,
//! as fixed-point seconds rounding does in real hosts), locate, loop wrap (between blocks or
//! inside a block), pre-roll (negative positions), and a broken host's numbers ([`Absurd`]:
//! any position, any tempo, a beats-only timeline).

use clack_host::events::event_types::{TransportEvent, TransportFlags};
use clack_host::events::{EventFlags, EventHeader};
use clack_host::utils::{BeatTime, SecondsTime};

/// CLAP fixed-point factor for seconds and beats: 2^31.
pub const CLAP_FIXED_POINT_FACTOR: i64 = 1 << 31;

/// How a played span of timeline starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanStart {
    /// Continues the previous span sample for sample.
    Continue,
    /// Playback started (from stop, from a fresh activation or after a block without position).
    Start,
    /// Playback started at the position where the previous stopped blocks were parked.
    StartFromParked,
    /// Locate while playing.
    Locate,
    /// The host's loop sent the position back to the loop start.
    Loop,
}

/// One thing the transport did in one block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Played {
    /// Played timeline samples `[start, end)`.
    Span {
        /// First timeline sample.
        start: i64,
        /// One past the last.
        end: i64,
        /// How this span relates to what came before.
        how: SpanStart,
    },
    /// A stopped block parked at this timeline sample.
    Parked(i64),
    /// A block with no transport information at all.
    NoTransport,
}

/// Numbers a broken host reports in place of the model's (issue 14). The model still plays
/// its own timeline (its history is what was "really" played); only what the plugin is told
/// changes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Absurd {
    /// Report this sample position (VST3 `projectTimeSamples`; CLAP's fixed-point seconds and
    /// beats of it, saturated to `i64`).
    pub position: Option<i64>,
    /// Report this tempo in BPM (0, NaN, infinities...); the beats timeline stays the model's.
    pub tempo: Option<f64>,
    /// CLAP: leave out the seconds timeline, so the plugin derives positions from beats and the
    /// reported tempo.
    pub beats_only: bool,
}

/// The host transport.
#[derive(Debug, Clone)]
pub struct Transport {
    /// Hz.
    pub sample_rate: u32,
    /// Rolling.
    pub playing: bool,
    /// Exact timeline sample of the next block's first sample.
    pub position: i64,
    /// Active loop `[start, end)` in samples.
    pub loop_range: Option<(i64, i64)>,
    /// Report positions alternately one sample late and early (never on a start or locate).
    pub wobble: bool,
    /// Beats per minute (the beats timeline is derived from it).
    pub tempo: f64,
    /// Set the CLAP "within pre-roll" flag while the position is negative.
    pub preroll_flag: bool,
    /// What a broken host reports instead of the model's numbers (none by default).
    pub absurd: Absurd,
    /// How the next span starts (set by play, locate; consumed by the next playing block).
    next_start: SpanStart,
    /// Playing blocks since the last discontinuity (drives the wobble pattern).
    blocks_since_break: u64,
    /// What was played, block by block (spans merged when continuous).
    history: Vec<Played>,
}

impl Transport {
    /// A stopped transport at sample 0, 120 BPM, no loop.
    pub fn new(sample_rate: u32) -> Self {
        Self {
            sample_rate,
            playing: false,
            position: 0,
            loop_range: None,
            wobble: false,
            tempo: 120.0,
            preroll_flag: false,
            absurd: Absurd::default(),
            next_start: SpanStart::Start,
            blocks_since_break: 0,
            history: Vec::new(),
        }
    }

    /// A transport already rolling from `position`.
    pub fn playing_from(sample_rate: u32, position: i64) -> Self {
        let mut t = Self::new(sample_rate);
        t.position = position;
        t.play();
        t
    }

    /// Starts rolling from the current position.
    pub fn play(&mut self) {
        if !self.playing {
            self.playing = true;
            self.next_start = match self.history.last() {
                Some(Played::Parked(p)) if *p == self.position => SpanStart::StartFromParked,
                _ => SpanStart::Start,
            };
            self.blocks_since_break = 0;
        }
    }

    /// Stops (the position stays where it is).
    pub fn stop(&mut self) {
        self.playing = false;
    }

    /// Moves the playhead. While playing, the next block is a locate.
    pub fn locate(&mut self, position: i64) {
        self.position = position;
        if self.playing {
            self.next_start = SpanStart::Locate;
            self.blocks_since_break = 0;
        }
    }

    /// Makes the next playing block a new start (as after the plugin was told to resync, e.g.
    /// when its output is switched back on or its frame rate changes).
    pub fn resync(&mut self) {
        self.next_start = SpanStart::Start;
        self.blocks_since_break = 0;
    }

    /// Sets (or clears) the active loop range, in samples.
    pub fn set_loop(&mut self, range: Option<(i64, i64)>) {
        if let Some((s, e)) = range {
            assert!(e > s, "loop end must be after loop start");
        }
        self.loop_range = range;
    }

    /// What was played so far.
    pub fn history(&self) -> &[Played] {
        &self.history
    }

    /// Forgets the history (after a test has checked a phase).
    pub fn clear_history(&mut self) {
        self.history.clear();
    }

    /// Records a block without transport information (the caller passes no transport to the
    /// plugin for it). The next playing block is a new start.
    pub fn record_no_transport_block(&mut self) {
        self.history.push(Played::NoTransport);
        self.next_start = SpanStart::Start;
        self.blocks_since_break = 0;
    }

    /// The position the host reports for the next block: exact, or ±1 sample in wobble mode, or
    /// [`Absurd::position`].
    pub fn reported_position(&self) -> i64 {
        if let Some(position) = self.absurd.position {
            return position;
        }
        if !(self.wobble && self.playing) || self.blocks_since_break == 0 {
            return self.position;
        }
        if self.blocks_since_break % 2 == 1 { self.position + 1 } else { self.position - 1 }
    }

    /// Seconds in CLAP fixed point for a sample position, rounded to nearest, saturating at the
    /// `i64` range (±2^32 s: the most a CLAP host can say).
    pub fn seconds_fixed(&self, sample: i64) -> i64 {
        let n = i128::from(sample) * i128::from(CLAP_FIXED_POINT_FACTOR);
        let sr = i128::from(self.sample_rate.max(1));
        (2 * n + sr).div_euclid(2 * sr).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }

    /// The tempo the host reports: the model's, or [`Absurd::tempo`].
    pub fn reported_tempo(&self) -> f64 {
        self.absurd.tempo.unwrap_or(self.tempo)
    }

    /// Beats (quarter notes) at a sample position.
    pub fn beats(&self, sample: i64) -> f64 {
        sample as f64 / f64::from(self.sample_rate) * self.tempo / 60.0
    }

    /// Beats in CLAP fixed point.
    pub fn beats_fixed(&self, sample: i64) -> i64 {
        (self.beats(sample) * CLAP_FIXED_POINT_FACTOR as f64).round() as i64
    }

    /// The CLAP transport for the next block.
    pub fn clap_event(&self) -> TransportEvent {
        let pos = self.reported_position();
        let mut flags =
            TransportFlags::HAS_TEMPO | TransportFlags::HAS_BEATS_TIMELINE | TransportFlags::HAS_TIME_SIGNATURE;
        if !self.absurd.beats_only {
            flags |= TransportFlags::HAS_SECONDS_TIMELINE;
        }
        if self.playing {
            flags |= TransportFlags::IS_PLAYING;
        }
        if self.loop_range.is_some() {
            flags |= TransportFlags::IS_LOOP_ACTIVE;
        }
        if self.preroll_flag && pos < 0 {
            flags |= TransportFlags::IS_WITHIN_PRE_ROLL;
        }
        let (ls, le) = self.loop_range.unwrap_or((0, 0));
        let beats = self.beats(pos);
        let bar_number = (beats / 4.0).floor();
        TransportEvent {
            header: EventHeader::new_core(0, EventFlags::empty()),
            flags,
            song_pos_beats: BeatTime::from_bits(self.beats_fixed(pos)),
            song_pos_seconds: SecondsTime::from_bits(self.seconds_fixed(pos)),
            tempo: self.reported_tempo(),
            tempo_inc: 0.0,
            loop_start_beats: BeatTime::from_bits(self.beats_fixed(ls)),
            loop_end_beats: BeatTime::from_bits(self.beats_fixed(le)),
            loop_start_seconds: SecondsTime::from_bits(self.seconds_fixed(ls)),
            loop_end_seconds: SecondsTime::from_bits(self.seconds_fixed(le)),
            bar_start: BeatTime::from_bits((bar_number * 4.0 * CLAP_FIXED_POINT_FACTOR as f64) as i64),
            bar_number: bar_number as i32,
            time_signature_numerator: 4,
            time_signature_denominator: 4,
        }
    }

    /// How the next playing block's span will start (a pending play, locate or loop wrap, or
    /// [`SpanStart::Continue`]).
    pub fn next_span_start(&self) -> SpanStart {
        self.next_start
    }

    /// Moves on by one block of `len` samples (recording what was played), wrapping at the loop
    /// end while playing, inside the block if need be.
    ///
    /// A block of 0 samples plays nothing and parks nothing: it changes nothing here, and a
    /// pending start, locate or wrap waits for the next block that has samples.
    pub fn advance(&mut self, len: u32) {
        if len == 0 {
            return;
        }
        let len = i64::from(len);
        if !self.playing {
            self.history.push(Played::Parked(self.position));
            self.next_start = SpanStart::Start;
            return;
        }
        let mut how = std::mem::replace(&mut self.next_start, SpanStart::Continue);
        // A loop end at or before the block start does not wrap (the host is past the loop).
        let mut start = self.position;
        let mut remaining = len;
        loop {
            let mut end = start + remaining;
            let wrap = match self.loop_range {
                Some((ls, le)) if start < le && end >= le => Some((ls, le)),
                _ => None,
            };
            if let Some((_, le)) = wrap {
                end = le;
            }
            self.push_span(start, end, how);
            remaining -= end - start;
            match wrap {
                Some((ls, _)) => {
                    start = ls;
                    how = SpanStart::Loop;
                    if remaining == 0 {
                        // Block ends exactly on the loop end: the next block starts at the loop
                        // start, a wrap between blocks.
                        self.position = ls;
                        self.next_start = SpanStart::Loop;
                        self.blocks_since_break = 0;
                        return;
                    }
                }
                None => {
                    self.position = end;
                    break;
                }
            }
        }
        self.blocks_since_break = if how == SpanStart::Loop { 1 } else { self.blocks_since_break + 1 };
    }

    fn push_span(&mut self, start: i64, end: i64, how: SpanStart) {
        if end <= start {
            return;
        }
        if how == SpanStart::Continue
            && let Some(Played::Span { end: prev_end, .. }) = self.history.last_mut()
            && *prev_end == start
        {
            *prev_end = end;
            return;
        }
        self.history.push(Played::Span { start, end, how });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_point_seconds_round_trip_to_the_exact_sample() {
        for sr in [44_100u32, 48_000, 96_000, 192_000] {
            let t = Transport::new(sr);
            for pos in [-1_000_000_007i64, -1, 0, 1, 47_999, 48_000, 123_456_789, 10 * 3600 * 192_000] {
                let fixed = t.seconds_fixed(pos);
                let back = (fixed as f64 / CLAP_FIXED_POINT_FACTOR as f64 * f64::from(sr)).round() as i64;
                assert_eq!(back, pos, "sr {sr} pos {pos}");
            }
        }
    }

    #[test]
    fn loop_wraps_between_and_inside_blocks() {
        let mut t = Transport::playing_from(48_000, 0);
        t.set_loop(Some((100, 300)));
        t.advance(200); // 0..200
        t.advance(100); // 200..300, ends on the loop end
        assert_eq!(t.position, 100);
        t.advance(250); // 100..300 then 100..150
        assert_eq!(t.position, 150);
        assert_eq!(
            t.history(),
            &[
                Played::Span { start: 0, end: 300, how: SpanStart::Start },
                Played::Span { start: 100, end: 300, how: SpanStart::Loop },
                Played::Span { start: 100, end: 150, how: SpanStart::Loop },
            ]
        );
    }

    #[test]
    fn wobble_alternates_but_never_on_a_start() {
        let mut t = Transport::playing_from(48_000, 1000);
        t.wobble = true;
        let mut seen = Vec::new();
        for _ in 0..5 {
            seen.push(t.reported_position() - t.position);
            t.advance(64);
        }
        assert_eq!(seen, [0, 1, -1, 1, -1]);
    }

    #[test]
    fn absurd_numbers_replace_what_the_host_reports_and_saturate() {
        let mut t = Transport::playing_from(48_000, 1_000);
        t.absurd = Absurd { position: Some(i64::MAX), tempo: Some(0.0), beats_only: true };
        let event = t.clap_event();
        assert_eq!(event.song_pos_seconds.to_bits(), i64::MAX, "saturated, not wrapped");
        assert_eq!(t.seconds_fixed(i64::MIN), i64::MIN);
        assert_eq!(event.tempo, 0.0);
        assert!(!event.flags.contains(TransportFlags::HAS_SECONDS_TIMELINE));
        assert!(event.flags.contains(TransportFlags::HAS_BEATS_TIMELINE));
        t.advance(100);
        assert_eq!(t.position, 1_100, "the model plays its own timeline");
        t.absurd = Absurd::default();
        assert_eq!(t.reported_position(), 1_100);
    }

    #[test]
    fn empty_blocks_change_nothing() {
        let mut t = Transport::new(48_000);
        t.locate(500);
        t.play();
        t.advance(0);
        assert_eq!((t.position, t.next_span_start()), (500, SpanStart::Start), "the start waits for samples");
        t.advance(100);
        t.advance(0);
        t.stop();
        t.advance(0);
        assert_eq!(t.history(), &[Played::Span { start: 500, end: 600, how: SpanStart::Start }]);
        t.advance(10);
        assert_eq!(t.history().last(), Some(&Played::Parked(600)));
    }
}
