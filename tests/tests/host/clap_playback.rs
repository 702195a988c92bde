//! Plain playback from 0 across sample rates, block sizes and every frame rate: every frame
//! exactly once, in order, labels and fields right, seq +1, jump only on the first.

use osc_timecode_core::Timecode;
use osc_timecode_core::timecode::frame_at_sample;
use osc_timecode_tests::receiver::messages;

use crate::common::{Rig, rate};

/// Plays `seconds` from 0 and checks the whole stream.
fn play_from_zero(sample_rate: u32, block: u32, rate_name: &str, seconds: f64) {
    let rate = rate(rate_name);
    let mut rig = Rig::new(sample_rate, rate, block.max(64));
    rig.play_seconds(seconds, block);
    let what = format!("{sample_rate} Hz, block {block}, {rate_name}, {seconds} s from 0");
    let packets = rig.check(&what);
    let msgs = messages(&packets);

    // Spelled out as well (the stream check covers it): one message per frame touched, the first
    // one a jump at 00:00:00:00, the rest not, all playing.
    let total = (seconds * f64::from(sample_rate)).round() as i64;
    let frames = frame_at_sample(total - 1, sample_rate, rate) + 1;
    assert_eq!(msgs.len() as i64, frames, "{what}: one message per frame");
    assert_eq!(msgs[0].timecode, Timecode::from_frame(0, rate), "{what}: starts at 00:00:00:00");
    assert!(msgs[0].jump, "{what}: the first message is a jump");
    assert!(msgs[1..].iter().all(|m| !m.jump && !m.looped && m.playing), "{what}: no other jump");
}

#[test]
fn play_48k_block_512_25fps() {
    play_from_zero(48_000, 512, "25", 3.0);
}

#[test]
fn play_44k1_block_64_29_97df() {
    play_from_zero(44_100, 64, "29.97df", 3.0);
}

#[test]
fn play_96k_block_4096_59_94df() {
    play_from_zero(96_000, 4096, "59.94df", 3.0);
}

#[test]
fn play_192k_block_4096_23_976() {
    play_from_zero(192_000, 4096, "23.976", 3.0);
}

#[test]
fn play_192k_block_512_60fps() {
    play_from_zero(192_000, 512, "60", 2.0);
}

#[test]
fn play_48k_block_1_30fps() {
    play_from_zero(48_000, 1, "30", 0.5);
}

#[test]
fn play_44k1_block_1_29_97df() {
    play_from_zero(44_100, 1, "29.97df", 0.4);
}

#[test]
fn play_48k_block_64_24fps() {
    play_from_zero(48_000, 64, "24", 3.0);
}

#[test]
fn play_44k1_block_4096_50fps() {
    play_from_zero(44_100, 4096, "50", 3.0);
}

#[test]
fn play_96k_block_512_29_97_non_drop() {
    play_from_zero(96_000, 512, "29.97", 3.0);
}

#[test]
fn play_48k_block_4096_59_94_non_drop() {
    play_from_zero(48_000, 4096, "59.94", 3.0);
}

#[test]
fn play_48k_odd_block_sizes_29_97df() {
    // Blocks of varying, odd sizes (as hosts with variable buffers send).
    let rate = rate("29.97df");
    let mut rig = Rig::new(48_000, rate, 4096);
    rig.transport.play();
    let sizes: Vec<u32> = (0..200u32).map(|i| [1, 7, 333, 4096, 1000, 64, 2049][i as usize % 7]).collect();
    let report = rig.plugin.run_blocks(Some(&mut rig.transport), &sizes);
    assert_eq!(report.passthrough_mismatches, 0);
    rig.check("48 kHz, varying block sizes, 29.97df");
}

#[test]
fn drop_frame_minute_boundary_skips_labels() {
    // Play across 00:01:00 and 00:10:00 at 29.97 DF and 59.94 DF: labels ;00 ;01 (;00–;03) are
    // skipped at minute 1 but not at minute 10. The stream check compares with core's labels;
    // this also checks the skip directly on the wire.
    for (name, dropped) in [("29.97df", 2u8), ("59.94df", 4u8)] {
        let rate = rate(name);
        let sr = 48_000;
        let mut rig = Rig::new(sr, rate, 1024);
        for minute in [1u8, 10] {
            // Start two seconds before the minute's first label.
            let first =
                Timecode::new(0, minute, 0, if minute % 10 == 0 { 0 } else { dropped }, rate).unwrap().to_frame();
            let start = osc_timecode_core::timecode::frame_start_sample(first, sr, rate) - 2 * i64::from(sr);
            rig.transport.locate(start);
            rig.play_seconds(4.0, 1024);
            rig.transport.stop();
        }
        let packets = rig.check(&format!("{name} across minutes 1 and 10"));
        let labels: Vec<String> = messages(&packets).iter().map(|m| m.timecode.to_string()).collect();
        for f in 0..dropped {
            let skipped = format!("00:01:00;{f:02}");
            assert!(!labels.contains(&skipped), "{name}: {skipped} must not be sent");
            let kept = format!("00:10:00;{f:02}");
            assert!(labels.contains(&kept), "{name}: {kept} must be sent");
        }
    }
}

#[test]
fn realtime_host_gets_frames_spaced_by_the_frame_period() {
    // Paced like a real host with a large buffer: frames are sent at their due time, not in
    // bursts per block, and timetags advance by one frame period.
    let sr = 48_000;
    let rate = rate("25");
    let mut rig = Rig::new(sr, rate, 4096);
    rig.transport.play();
    let report = rig.plugin.run_realtime(&mut rig.transport, u64::from(sr), 4096);
    assert_eq!(report.passthrough_mismatches, 0);
    let packets = rig.check("real-time paced, 4096-sample blocks");
    let period = f64::from(rate.den()) / f64::from(rate.num());
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let arrival_gaps: Vec<f64> = packets.windows(2).map(|w| (w[1].at - w[0].at).as_secs_f64()).collect();
    let tag_gaps: Vec<f64> = packets
        .windows(2)
        .map(|w| {
            let t = |p: &osc_timecode_tests::receiver::Packet| {
                osc_timecode_core::protocol::system_time_from_timetag(p.timetag())
            };
            match t(&w[1]).duration_since(t(&w[0])) {
                Ok(d) => d.as_secs_f64(),
                Err(e) => -e.duration().as_secs_f64(),
            }
        })
        .collect();
    let (arrival, tag) = (median(arrival_gaps.clone()), median(tag_gaps.clone()));
    assert!((arrival - period).abs() < 0.005, "median arrival gap {arrival:.4} s, frame period {period:.4} s");
    assert!((tag - period).abs() < 0.002, "median timetag step {tag:.4} s, frame period {period:.4} s");
    assert!(tag_gaps.iter().all(|&g| g > 0.0), "timetags increase when the host runs in real time");
    let block = 4096.0 / f64::from(sr);
    assert!(arrival_gaps.iter().all(|&g| g < block), "no gap as long as a block: frames are not bunched per block");
}
