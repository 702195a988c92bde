//! Spans: what each sample of a host block plays, for outputs that need every sample (LTC audio)
//! or every quarter frame (MTC), not only the frames that start in the block.
//!
//! [`crate::clock::FrameClock::process_block`] reports the frames that start in a block; it also
//! records the block as spans ([`crate::clock::FrameClock::spans`]): stretches of the block, in
//! order and without gaps, each playing contiguous timeline samples or parked at one. A block the
//! host gave no usable position has no spans (the outputs fall silent). A loop wrap starts a new
//! span; so does every discontinuity the frames flag as a jump, and also a start of play from the
//! parked position and a stop, which receivers of MTC must hear as a full frame though the frame
//! numbers continue.
//!
//! Positions are the clock's: the timeline sample it counts from (the host's, kept continuous
//! through one-sample wobble, see [`crate::clock::WOBBLE_SAMPLES`]), without the start offset. The
//! frame under a span's first sample is `frame_at_sample(timeline) + offset_frames`, exactly the
//! frame the clock reports.
//!
//! Fixed capacity ([`MAX_SPANS`]): a block splits at most at [`MAX_LOOP_WRAPS`] loop wraps, plus
//! one span for the passes a tiny loop makes the clock skip ([`SpanState::Skipped`]). Plain data:
//! no heap, `Copy`, safe on the audio thread.

use std::ops::Range;

use crate::clock::{FrameClock, MAX_LOOP_WRAPS};
use crate::timecode::{frame_at_sample, frame_start_sample};

/// What a span plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanState {
    /// The transport rolls through timeline samples `timeline ..`.
    Playing,
    /// The transport is stopped at timeline sample `timeline`.
    Parked,
    /// Passes of a loop shorter than a block / [`MAX_LOOP_WRAPS`] that the clock does not report
    /// one by one ([`crate::clock::MAX_LOOP_WRAPS`]): no position is defined for them, so the
    /// outputs write nothing (LTC silence) there.
    Skipped,
}

/// One stretch of a block. `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Samples from the block's first sample to the span's first sample.
    pub offset: u32,
    /// Samples in the span, at least 1.
    pub len: u32,
    /// The clock's timeline sample (start offset not included) at the span's first sample: where
    /// a playing span starts, or where a parked one stays.
    pub timeline: i64,
    /// Playing, parked or skipped.
    pub state: SpanState,
    /// The span carries on exactly from the previous one (the same block's or the last block's):
    /// playing on from where it ended, or parked at the same frame. False at a start of play (from
    /// the parked position too), a locate, a loop wrap, a stop, a new park position, a rate or
    /// offset change, and after a block without position.
    pub continues: bool,
    /// The span begins at the host loop's start after a wrap.
    pub looped: bool,
}

impl Span {
    /// The frame under the span's first sample, numbered as `clock` reports frames (its start
    /// offset included), and how many of that frame's samples lie before the span's first sample.
    /// `clock` is the clock that recorded the span.
    pub fn frame_under(&self, clock: &FrameClock) -> (i64, u32) {
        let (sr, rate) = (clock.sample_rate(), clock.rate());
        let timeline_frame = frame_at_sample(self.timeline, sr, rate);
        let into = self.timeline.saturating_sub(frame_start_sample(timeline_frame, sr, rate));
        (timeline_frame.saturating_add(clock.offset_frames()), u32::try_from(into).unwrap_or(0))
    }

    /// The frames (start offset included) whose first sample lies in the span: empty unless it
    /// plays.
    pub fn frames_starting(&self, clock: &FrameClock) -> Range<i64> {
        if self.state != SpanState::Playing {
            return 0..0;
        }
        let (sr, rate, offset) = (clock.sample_rate(), clock.rate(), clock.offset_frames());
        let end = self.timeline.saturating_add(i64::from(self.len));
        let next = |sample: i64| frame_at_sample(sample.saturating_sub(1), sr, rate).saturating_add(1);
        next(self.timeline).saturating_add(offset)..next(end).saturating_add(offset)
    }

    /// How many frames start in the span ([`Self::frames_starting`]).
    pub fn frames_starting_count(&self, clock: &FrameClock) -> u64 {
        let frames = self.frames_starting(clock);
        u64::try_from(frames.end.saturating_sub(frames.start)).unwrap_or(0)
    }
}

/// Spans a block has at most: one per loop pass reported, one for the passes skipped, and the
/// last.
pub const MAX_SPANS: usize = MAX_LOOP_WRAPS as usize + 2;

/// The spans of one block, in order. Fixed capacity, `Copy`: no heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spans {
    /// Storage; the first `len` are the block's.
    items: [Span; MAX_SPANS],
    /// Spans recorded, at most [`MAX_SPANS`].
    len: usize,
}

impl Default for Spans {
    fn default() -> Self {
        let empty = Span { offset: 0, len: 0, timeline: 0, state: SpanState::Skipped, continues: false, looped: false };
        Self { items: [empty; MAX_SPANS], len: 0 }
    }
}

impl Spans {
    /// Forgets the spans (a new block).
    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    /// Records `span` after the others; empty spans are not recorded. Beyond [`MAX_SPANS`] (the
    /// clock never gets there) the last span is widened to cover it as skipped, so the spans
    /// still cover the block without a panic.
    pub(crate) fn push(&mut self, span: Span) {
        if span.len == 0 {
            return;
        }
        if self.len < MAX_SPANS {
            self.items[self.len] = span;
            self.len += 1;
        } else if let Some(last) = self.items.last_mut() {
            last.len = (span.offset + span.len).saturating_sub(last.offset);
            last.state = SpanState::Skipped;
        }
    }

    /// The spans, in block order.
    pub fn as_slice(&self) -> &[Span] {
        &self.items[..self.len]
    }

    /// The last span, if any (where the block ends).
    pub fn last(&self) -> Option<&Span> {
        self.as_slice().last()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(offset: u32, len: u32) -> Span {
        Span { offset, len, timeline: 0, state: SpanState::Playing, continues: true, looped: false }
    }

    #[test]
    fn empty_spans_are_not_recorded() {
        let mut spans = Spans::default();
        spans.push(span(0, 0));
        spans.push(span(0, 10));
        assert_eq!(spans.as_slice(), &[span(0, 10)]);
        spans.clear();
        assert!(spans.as_slice().is_empty());
    }

    #[test]
    fn overflow_widens_the_last_span_as_skipped_never_panics() {
        let mut spans = Spans::default();
        for i in 0..MAX_SPANS as u32 + 5 {
            spans.push(span(i * 10, 10));
        }
        assert_eq!(spans.as_slice().len(), MAX_SPANS);
        let last = spans.last().copied().unwrap();
        assert_eq!(last.state, SpanState::Skipped);
        assert_eq!(last.offset + last.len, (MAX_SPANS as u32 + 5) * 10, "the spans still reach the block's end");
    }
}
