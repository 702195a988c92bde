//! The audio thread's frame clock: `FrameClock::process_block` (core/src/clock.rs) over a run of
//! blocks a host could send, and some no host should: sample rates from 0 to `u32::MAX`, positions
//! up to `i64::MIN`/`MAX`, loop ranges empty, reversed or absurd, blocks of 0 to 2^20 samples,
//! start offsets of any `i64`, rate and offset changes, resyncs, play and stop; plus
//! `usable_sample_rate` on any `f64` and `offset_frames` on any second.
//!
//! Input: bytes read as choices (`arbitrary::Unstructured`): the clock's sample rate, rate and
//! offset, then blocks until the bytes run out (at most [`MAX_BLOCKS`] blocks and
//! [`EVENT_BUDGET`] events). A block continues the
//! last one exactly most of the time, so long runs of sane play are reached, not only jumps.
//!
//! Checks, besides "never panics" (debug assertions on: an overflow panics, as it would in a
//! debug bundle's audio thread): at most `max_events` events per block, at strictly increasing
//! offsets inside the block, each of the clock's rate; and where the input is sane (a usable
//! sample rate, positions within ±`MAX_POSITION`, an offset that cannot saturate), frames as
//! core's arithmetic gives them: a parked block reports `frame_at_sample(position)`, a jump the
//! frame under the block's first sample, every frame that starts does so at its offset
//! (`frame_start_sample`), and across blocks that continue each other without a loop every frame
//! is reported once, in order, the last one being the frame under the block's last sample.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use osc_timecode_core::FrameRate;
use osc_timecode_core::clock::{
    BlockInput, FrameClock, FrameEvent, MAX_POSITION, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, max_events, offset_frames,
    usable_sample_rate,
};
use osc_timecode_core::timecode::{frame_at_sample, frame_start_sample};

/// Blocks per input, at most (bounds the work per run).
const MAX_BLOCKS: usize = 256;

/// Events per input, at most (the sum of `max_events` over its blocks): long runs at 8 kHz are
/// as informative as short ones and cost a frame each, so the input ends where this runs out.
const EVENT_BUDGET: u64 = 20_000;

/// Samples per block, at most, unless the input picks one of the [`LENGTHS`]: 2^20, a long
/// offline block. At 8 kHz and 60 fps that is 7,864 frames.
const MAX_LEN: u32 = 1 << 20;

/// Sample rates worth hitting exactly: none, the refused ones (issue 14: 1–59 Hz ran the frame
/// loop ~10^19 times), the limits and what interfaces offer.
const SAMPLE_RATES: [u32; 14] =
    [0, 1, 59, 7_999, 8_000, 22_050, 44_100, 48_000, 88_200, 96_000, 192_000, 1_536_000, 1_536_001, u32::MAX];

/// Positions and loop ends worth hitting exactly.
const POSITIONS: [i64; 12] = [
    i64::MIN,
    i64::MIN + 1,
    -MAX_POSITION - 1,
    -MAX_POSITION,
    -1,
    0,
    1,
    MAX_POSITION - 4096,
    MAX_POSITION,
    MAX_POSITION + 1,
    i64::MAX - 1,
    i64::MAX,
];

/// Block lengths worth hitting exactly.
const LENGTHS: [u32; 8] = [0, 1, 2, 64, 512, 4096, 8192, 65_536];

/// Start offsets (frames) worth hitting exactly.
const OFFSETS: [i64; 6] = [0, 90_000, -1, i64::MIN, i64::MAX, i64::MAX - 5_184_000];

fn pick<T: Copy>(u: &mut Unstructured, from: &[T]) -> Result<T> {
    Ok(*u.choose(from)?)
}

fn sample_rate(u: &mut Unstructured) -> Result<u32> {
    if u.ratio(3, 4)? { pick(u, &SAMPLE_RATES) } else { u.arbitrary() }
}

fn offset(u: &mut Unstructured) -> Result<i64> {
    match u.int_in_range(0..=3)? {
        0 => pick(u, &OFFSETS),
        1 => u.arbitrary(),
        _ => Ok(offset_frames(u.arbitrary()?, pick(u, &FrameRate::ALL)?)),
    }
}

fn position(u: &mut Unstructured, around: i64) -> Result<i64> {
    Ok(match u.int_in_range(0..=3)? {
        0 => pick(u, &POSITIONS)?,
        1 => u.arbitrary()?,
        _ => around.saturating_add(u.int_in_range(-100_000..=100_000)?),
    })
}

/// What the test expects of the clock's continuity, mirroring `FrameClock`'s own rule for blocks
/// without a loop: a playing block within one sample of where the last one ended continues it.
#[derive(Debug, Clone, Copy)]
enum Run {
    /// The next playing block is a jump (after a start, stop, locate, no position, resync).
    Broken,
    /// The clock expects the next block at `next`; `last` is the last frame it reported (timeline
    /// frame, offset removed), if any.
    At { next: i64, last: Option<i64> },
    /// After a loop: the clock's expectation is not modelled until the next stop or resync.
    Unknown,
}

fn run(u: &mut Unstructured) -> Result<()> {
    // The helpers of core stay within their contracts whatever the input.
    let hz: f64 = f64::from_bits(u.arbitrary()?);
    if let Some(rounded) = usable_sample_rate(hz) {
        assert!((MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&rounded), "{hz} -> {rounded}");
        assert!((hz - f64::from(rounded)).abs() <= 0.5, "{hz} -> {rounded}");
    }
    let seconds: u32 = u.arbitrary()?;
    for rate in FrameRate::ALL {
        assert!((0..rate.frames_per_day()).contains(&offset_frames(seconds, rate)), "{seconds} s at {rate}");
    }

    let sr_asked = sample_rate(u)?;
    let mut rate = pick(u, &FrameRate::ALL)?;
    let mut offset_frames = offset(u)?;
    let mut clock = FrameClock::new(sr_asked, rate, offset_frames);
    let sr = clock.sample_rate();
    assert!((MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&sr), "asked {sr_asked}, runs at {sr}");
    assert_eq!(sr, sr_asked.clamp(MIN_SAMPLE_RATE, MAX_SAMPLE_RATE));

    let mut state = Run::Broken;
    let mut was_playing = false;
    // Where the clock parked (timeline sample), if it did since the last play or resync: rolling
    // from there continues the parked frame, not a jump.
    let mut parked: Option<i64> = None;
    let mut around = 0i64;
    let mut loop_range: Option<(i64, i64)> = None;
    let mut events: Vec<FrameEvent> = Vec::new();
    let mut budget = EVENT_BUDGET;
    for _ in 0..MAX_BLOCKS {
        if u.is_empty() {
            break;
        }
        match u.int_in_range(0..=31u8)? {
            0 => {
                rate = pick(u, &FrameRate::ALL)?;
                let new_offset = offset(u)?;
                let changed = rate != clock.rate() || new_offset != offset_frames;
                clock.set_rate(rate, new_offset);
                offset_frames = new_offset;
                if changed {
                    state = Run::Broken;
                    parked = None;
                }
                continue;
            }
            1 => {
                clock.resync();
                state = Run::Broken;
                parked = None;
                continue;
            }
            2 => {
                loop_range = if u.arbitrary()? {
                    let start = position(u, around)?;
                    let len: i64 = if u.arbitrary()? { u.int_in_range(-2..=100_000)? } else { u.arbitrary()? };
                    Some((start, start.saturating_add(len)))
                } else {
                    None
                };
                continue;
            }
            _ => {}
        }
        let playing = u.ratio(7, 8)?;
        // Mostly the exact continuation, sometimes a wobble, a locate or no position at all.
        let pos = match u.int_in_range(0..=15u8)? {
            0 => None,
            1 | 2 => Some(position(u, around)?),
            3 => Some(around.saturating_add(i64::from(u.int_in_range(-1..=1i8)?))),
            _ => Some(around),
        };
        let len = if u.ratio(1, 2)? { pick(u, &LENGTHS)? } else { u.int_in_range(0..=MAX_LEN)? };
        let bound = max_events(len, sr, rate);
        budget = match budget.checked_sub(bound) {
            Some(left) => left,
            None => break,
        };
        let block = BlockInput { playing, position: pos, loop_range, len };
        let usable = block.usable();

        events.clear();
        clock.process_block(block, |e| events.push(e));

        // Bounded, ordered, of the clock's rate, whatever the input.
        assert!(events.len() as u64 <= bound, "{} events > {bound} for {block:?}", events.len());
        for pair in events.windows(2) {
            assert!(pair[0].offset < pair[1].offset, "offsets out of order in {block:?}: {pair:?}");
        }
        for e in &events {
            assert_eq!(e.rate, rate, "{e:?}");
            assert!(e.offset < len.max(1), "{e:?} in a block of {len}");
            assert_eq!(e.playing, usable.playing, "{e:?}");
        }
        if usable.position.is_none() {
            assert!(events.is_empty(), "no position, yet {events:?}");
        }

        // Frames as core's arithmetic gives them, where nothing saturates.
        let sane_offset = offset_frames.unsigned_abs() < 1 << 62;
        let timeline = |e: &FrameEvent| e.frame - offset_frames;
        match usable.position {
            None => {
                state = Run::Broken;
                parked = None;
            }
            Some(p) if !usable.playing => {
                if sane_offset && let Some(e) = events.first() {
                    assert_eq!(timeline(e), frame_at_sample(p, sr, rate), "parked at {p}: {e:?}");
                    assert!(e.offset == 0 && !e.starts, "{e:?}");
                }
                state = Run::Broken;
                parked = Some(p);
            }
            Some(_) if usable.loop_range.is_some() => {
                state = Run::Unknown;
                parked = None;
            }
            Some(p) => {
                let from_parked = !was_playing && parked.is_some_and(|at| p.abs_diff(at) <= 1);
                parked = None;
                let continues = was_playing && matches!(state, Run::At { next, .. } if p.abs_diff(next) <= 1);
                let (base, last) = match state {
                    Run::At { next, last } if continues => (next, last),
                    _ => (p, None),
                };
                if !matches!(state, Run::Unknown) && sane_offset {
                    let mut expected_next = last.map(|l| l + 1);
                    for (i, e) in events.iter().enumerate() {
                        let tf = timeline(e);
                        let at = base + i64::from(e.offset);
                        if i == 0 && !continues {
                            assert_eq!(e.offset, 0, "a break reports at offset 0: {e:?}");
                            assert_eq!(
                                e.jump, !from_parked,
                                "a break is a jump unless it rolls from where it parked: {e:?}"
                            );
                            assert!(!e.looped, "{e:?}");
                            assert_eq!(tf, frame_at_sample(p, sr, rate), "the frame under {p}: {e:?}");
                        } else {
                            assert!(!e.jump && !e.looped, "{e:?}");
                        }
                        assert_eq!(e.starts, frame_start_sample(tf, sr, rate) == at, "{e:?} at sample {at}");
                        if let Some(want) = expected_next {
                            assert_eq!(tf, want, "every frame once, in order: {e:?}");
                        }
                        expected_next = Some(tf + 1);
                    }
                    let last = expected_next.map(|n| n - 1);
                    if len > 0 && last.is_some() {
                        let end = base + i64::from(len) - 1;
                        assert_eq!(last, Some(frame_at_sample(end, sr, rate)), "last frame of {block:?}");
                    }
                    state = Run::At { next: base + i64::from(len), last };
                } else if !matches!(state, Run::Unknown) {
                    state = Run::At { next: base + i64::from(len), last: None };
                }
            }
        }
        was_playing = usable.position.is_some() && usable.playing;
        if let Some(p) = usable.position {
            around = p.saturating_add(i64::from(len));
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
