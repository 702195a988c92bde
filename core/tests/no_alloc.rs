//! The audio-thread half of core allocates nothing: run it under a counting global allocator
//! (the approach of assert_no_alloc's own tests) and require zero allocations.

use osc_timecode_core::FrameRate;
use osc_timecode_core::clock::{BlockInput, FrameClock, offset_frames};
use osc_timecode_core::timecode::{Timecode, frame_at_sample, frame_start_sample};

mod counting;

use counting::count_allocs;

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
