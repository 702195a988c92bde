//! The audio-thread half of core allocates nothing: run it under a counting global allocator
//! (the approach of assert_no_alloc's own tests) and require zero allocations.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use osc_timecode_core::FrameRate;
use osc_timecode_core::clock::{BlockInput, FrameClock, offset_frames};
use osc_timecode_core::timecode::{Timecode, frame_at_sample, frame_start_sample};

struct Counting;

thread_local! {
    /// Allocations made on this thread while counting is on.
    static ALLOCS: Cell<Option<u64>> = const { Cell::new(None) };
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get().map(|n| n + 1)));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get().map(|n| n + 1)));
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns how many allocations it made on this thread.
fn count_allocs(f: impl FnOnce()) -> u64 {
    ALLOCS.with(|c| c.set(Some(0)));
    f();
    ALLOCS.with(|c| c.replace(None)).unwrap_or(0)
}

#[test]
fn the_counter_sees_allocations() {
    let n = count_allocs(|| {
        let v: Vec<u8> = Vec::with_capacity(16);
        std::hint::black_box(v);
    });
    assert_eq!(n, 1, "the counting allocator must notice a Vec allocation");
}

#[test]
fn frame_clock_and_labels_do_not_allocate() {
    let mut clock = FrameClock::new(48_000, FrameRate::FPS_29_97_DF, 0);
    let mut events = 0u64;
    let mut label_bytes = 0usize;
    let n = count_allocs(|| {
        let mut pos: i64 = -96_000;
        for i in 0..20_000u32 {
            let len = [1, 64, 512, 4096, 0, 333][(i % 6) as usize];
            let rate = FrameRate::ALL[(i / 2_000) as usize % 10];
            clock.set_rate(rate, offset_frames(3600, rate));
            // Play, wobble, loop, stop, lose the transport: every path of process_block.
            let (playing, position, loop_range) = match i % 50 {
                0..=39 => (true, Some(pos + i64::from(i % 2)), Some((0, 480_000))),
                40..=44 => (false, Some(pos), None),
                45 => (true, None, None),
                _ => (true, Some(pos - 10_000), Some((pos - 10_000, pos + 100))),
            };
            clock.process_block(BlockInput { playing, position, loop_range, len }, |e| {
                events += 1;
                let tc = Timecode::from_frame(e.frame, e.rate);
                label_bytes += tc.label().as_str().len();
                std::hint::black_box(frame_start_sample(e.frame, 48_000, e.rate));
            });
            pos += i64::from(len);
            std::hint::black_box(frame_at_sample(pos, 48_000, rate));
        }
    });
    assert_eq!(n, 0, "the audio-side code allocated {n} times");
    assert!(events > 10_000, "the loop must really have produced frames ({events})");
    assert_eq!(label_bytes as u64, events * 11);
}
