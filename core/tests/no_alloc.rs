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

#[test]
fn the_ltc_mtc_and_art_net_encoders_do_not_allocate() {
    use osc_timecode_core::{artnet, ltc, mtc};
    let mut out = [0.0f32; 512];
    let (mut samples, mut messages, mut packets) = (0usize, 0u64, 0u64);
    let n = count_allocs(|| {
        for rate in FrameRate::ALL {
            for half_rate in [false, true] {
                // LTC: a few frames rendered block by block, as the audio thread will.
                if let Ok(format) = ltc::LtcFormat::new(rate, half_rate) {
                    // With a start offset of 01:00:00:00, as the plugin's frame clock numbers frames.
                    let start = osc_timecode_core::clock::offset_frames(3_600, rate);
                    let writer = ltc::LtcWriter::new(format, 48_000, -18.0, start).expect("a usable writer");
                    for frame in [-2i64, 0, 1, 1799, 86_400 * 30].map(|f| f + start) {
                        let mut offset = 0;
                        while offset < writer.frame_len(frame) {
                            let written = writer.fill(frame, offset, &mut out);
                            if written == 0 {
                                break;
                            }
                            samples += written;
                            offset += written as u32;
                        }
                        std::hint::black_box(format.word(frame).bytes());
                    }
                }
                // MTC: a second of quarter frames and a full frame.
                if let Ok(format) = mtc::MtcFormat::new(rate, half_rate) {
                    let clock = mtc::QuarterClock::new(format, 48_000, 0);
                    let mut q = clock.first_quarter_from(-4_800);
                    while clock.quarter_start_sample(q) < 48_000 {
                        std::hint::black_box(clock.quarter_message(q));
                        messages += 1;
                        q += 1;
                    }
                    std::hint::black_box(format.full_frame(1234));
                }
                // Art-Net: a packet per frame of a second.
                for frame in 0..60 {
                    if let Ok(packet) = artnet::encode_frame(frame, rate, 0, half_rate) {
                        std::hint::black_box(packet);
                        packets += 1;
                    }
                }
            }
        }
    });
    assert_eq!(n, 0, "the encoders allocated {n} times");
    assert!(samples > 0 && messages > 0 && packets > 0, "{samples} samples, {messages} messages, {packets} packets");
}
