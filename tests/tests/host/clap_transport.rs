//! Transport behaviour: stop and park, locate, loop wraps (between and inside blocks), pre-roll
//! through midnight, one-sample wobble, blocks without transport.

use osc_timecode_core::timecode::frame_at_sample;
use osc_timecode_core::{FrameRate, Timecode};
use osc_timecode_tests::clap::Param;
use osc_timecode_tests::expect::{Timing, assert_seq_consecutive, assert_stream, expected};
use osc_timecode_tests::receiver::messages;
use osc_timecode_tests::transport::Transport;

use crate::common::{Rig, rate, receive};

#[test]
fn stop_sends_the_parked_frame_and_resuming_there_is_not_a_jump() {
    let sr = 48_000;
    let mut rig = Rig::new(sr, rate("25"), 512);
    rig.play_seconds(1.0, 512);
    let stop_at = rig.transport.position;
    rig.transport.stop();
    rig.run(u64::from(sr) / 2, 512);
    rig.transport.play();
    rig.run(u64::from(sr) / 2, 512);
    let packets = rig.check("play, stop, resume");
    let msgs = messages(&packets);
    let parked: Vec<_> = msgs.iter().filter(|m| !m.playing).collect();
    assert_eq!(parked.len(), 1, "one parked message (keep-alive is off)");
    assert_eq!(parked[0].frame, frame_at_sample(stop_at, sr, rate("25")), "parked at the stop position");
    assert!(!parked[0].jump, "stopping where we were is not a jump");
    let resumed = msgs.iter().position(|m| !m.playing).unwrap() + 1;
    assert!(msgs[resumed].playing && !msgs[resumed].jump, "resuming at the parked position is not a jump");
}

#[test]
fn locate_while_playing_is_a_jump_to_the_new_frame() {
    let sr = 44_100;
    let rate = rate("29.97df");
    let mut rig = Rig::new(sr, rate, 512);
    rig.play_seconds(1.0, 512);
    rig.transport.locate(10 * i64::from(sr) + 12_345);
    rig.run(u64::from(sr), 512);
    rig.transport.locate(i64::from(sr) / 2);
    rig.run(u64::from(sr) / 2, 256);
    let packets = rig.check("locate while playing");
    let jumps: Vec<_> = messages(&packets).into_iter().filter(|m| m.jump).collect();
    assert_eq!(jumps.len(), 3, "start + two locates");
    assert_eq!(jumps[1].frame, frame_at_sample(10 * i64::from(sr) + 12_345, sr, rate));
    assert_eq!(jumps[2].frame, frame_at_sample(i64::from(sr) / 2, sr, rate));
    assert!(jumps.iter().all(|m| !m.looped), "a locate is not a loop");
}

#[test]
fn loop_wrap_between_blocks_is_jump_and_loop() {
    let sr = 48_000;
    let mut rig = Rig::new(sr, rate("30"), 480);
    // Loop [1 s, 2 s): block-aligned with 480-sample blocks, so the host jumps back between blocks.
    rig.transport.set_loop(Some((i64::from(sr), 2 * i64::from(sr))));
    rig.transport.locate(i64::from(sr) / 2);
    rig.play_seconds(4.0, 480);
    let packets = rig.check("loop wrap between blocks");
    let loops: Vec<_> = messages(&packets).into_iter().filter(|m| m.looped).collect();
    assert_eq!(loops.len(), 3, "0.5 s → 2 s, then two more passes of the loop in 4 s");
    for m in &loops {
        assert!(m.jump, "a loop wrap is a jump");
        assert_eq!(m.frame, frame_at_sample(i64::from(sr), sr, rate("30")), "back to the loop start's frame");
    }
}

#[test]
fn loop_wrap_inside_a_block_is_jump_and_loop() {
    let sr = 48_000;
    let rate = rate("29.97df");
    let mut rig = Rig::new(sr, rate, 512);
    // Loop [1.01 s, 1.7 s): neither end on a block or frame boundary.
    let (ls, le) = (48_480, 81_600);
    rig.transport.set_loop(Some((ls, le)));
    rig.play_seconds(4.0, 512);
    let packets = rig.check("loop wrap inside blocks");
    let loops: Vec<_> = messages(&packets).into_iter().filter(|m| m.looped).collect();
    assert!(loops.len() >= 4, "several wraps in 4 s of a 0.69 s loop, got {}", loops.len());
    assert!(loops.iter().all(|m| m.jump && m.frame == frame_at_sample(ls, sr, rate)));
}

#[test]
fn loop_shorter_than_a_block_wraps_several_times_per_block() {
    let sr = 96_000;
    let rate = rate("60");
    let mut rig = Rig::new(sr, rate, 4096);
    // A 1000-sample loop (about 0.6 frames at 60 fps) with 4096-sample blocks.
    rig.transport.set_loop(Some((10_000, 11_000)));
    rig.transport.locate(9_000);
    rig.play_seconds(0.5, 4096);
    rig.check("tiny loop, several wraps per block");
}

#[test]
fn preroll_counts_up_through_midnight() {
    for (sr, name, block, seconds_before) in
        [(48_000, "25", 512, 2), (44_100, "29.97df", 64, 3), (96_000, "59.94df", 4096, 1)]
    {
        let rate = rate(name);
        let mut rig = Rig::new(sr, rate, block);
        rig.transport.preroll_flag = true;
        rig.transport.locate(-(seconds_before as i64) * i64::from(sr));
        rig.play_seconds(seconds_before as f64 + 1.0, block);
        let what = format!("pre-roll at {name}");
        let packets = rig.check(&what);
        let msgs = messages(&packets);
        assert!(msgs[0].frame < 0, "{what}: pre-roll frames are negative");
        assert_eq!(msgs[0].timecode.hours(), 23, "{what}: before zero the label is the previous day's");
        let zero = msgs.iter().position(|m| m.frame == 0).expect("frame 0 is sent");
        assert_eq!(msgs[zero - 1].frame, -1);
        assert_eq!(
            msgs[zero - 1].timecode,
            Timecode::from_frame(rate.frames_per_day() - 1, rate),
            "{what}: 23:59:59:last"
        );
        assert_eq!(msgs[zero].timecode.to_string(), Timecode::from_frame(0, rate).to_string());
        assert!(msgs[1..].iter().all(|m| !m.jump), "{what}: counting through midnight is not a jump");
    }
}

#[test]
fn one_sample_wobble_is_not_a_jump() {
    for (sr, name, block) in [(48_000, "30", 512), (44_100, "29.97df", 64), (192_000, "24", 4096)] {
        let mut rig = Rig::new(sr, rate(name), block);
        rig.transport.wobble = true;
        rig.transport.locate(123_457);
        rig.play_seconds(2.0, block);
        let what = format!("wobble at {sr} Hz {name} block {block}");
        let packets = rig.check(&what);
        assert_eq!(messages(&packets).iter().filter(|m| m.jump).count(), 1, "{what}: only the start is a jump");
    }
}

#[test]
fn blocks_without_transport_send_nothing_and_break_continuity() {
    let sr = 48_000;
    let rate = rate("25");
    let mut rig = Rig::new(sr, rate, 512);
    rig.plugin.run_without_transport(&mut rig.transport, 100, 512);
    let nothing = rig.rx.collect_for(std::time::Duration::from_millis(500));
    assert!(nothing.is_empty(), "no transport, no timecode; got {}", nothing.len());

    rig.transport.locate(i64::from(sr));
    rig.play_seconds(0.5, 512);
    rig.plugin.run_without_transport(&mut rig.transport, 10, 512);
    rig.transport.locate(rig.transport.position + 10 * 512);
    rig.run(u64::from(sr) / 2, 512);
    let packets = rig.check("null transport between playing blocks");
    assert_eq!(messages(&packets).iter().filter(|m| m.jump).count(), 2, "each resumption after no transport is a jump");
}

#[test]
fn rate_change_while_playing_is_a_jump_in_the_new_rate() {
    let sr = 48_000;
    let (r25, r2997) = (rate("25"), rate("29.97df"));
    let mut rig = Rig::new(sr, r25, 512);
    rig.play_seconds(1.0, 512);
    let first = expected(rig.transport.history(), Timing::new(sr, r25));
    rig.transport.clear_history();
    rig.plugin.set_param(Param::Rate, r2997.index() as f64);
    rig.transport.resync();
    rig.run(u64::from(sr), 512);
    let second = expected(rig.transport.history(), Timing::new(sr, r2997));

    let packets = receive(&rig.rx, first.len() + second.len());
    let msgs = messages(&packets);
    assert!(msgs.len() >= first.len(), "got {} messages", msgs.len());
    assert_stream(&msgs[..first.len()], &first, r25, "before the rate change");
    assert_stream(&msgs[first.len()..], &second, r2997, "after the rate change");
    assert_seq_consecutive(&msgs, "across the rate change");
}

#[test]
fn transport_model_and_expectations_agree_with_core() {
    // Harness self-check, no plugin: a straight run of N samples expects exactly the frames
    // frame_at_sample(0) ..= frame_at_sample(N - 1).
    for rate in FrameRate::ALL {
        let mut t = Transport::playing_from(44_100, 0);
        for _ in 0..50 {
            t.advance(997);
        }
        let want = expected(t.history(), Timing::new(44_100, rate));
        let last = frame_at_sample(50 * 997 - 1, 44_100, rate);
        assert_eq!(want.iter().map(|e| e.frame).collect::<Vec<_>>(), (0..=last).collect::<Vec<_>>());
    }
}

#[test]
fn offset_change_while_playing_is_a_jump() {
    let sr = 48_000;
    let rate = rate("25");
    let mut rig = Rig::new(sr, rate, 512);
    rig.play_seconds(0.5, 512);
    let first = expected(rig.transport.history(), Timing::new(sr, rate));
    rig.transport.clear_history();
    rig.plugin.set_param(Param::Offset, 3600.0);
    rig.transport.resync();
    rig.run(u64::from(sr) / 2, 512);
    let second = expected(rig.transport.history(), Timing::new(sr, rate).with_offset_seconds(3600));

    let msgs = messages(&receive(&rig.rx, first.len() + second.len()));
    assert!(msgs.len() >= first.len(), "got {} messages", msgs.len());
    assert_stream(&msgs[..first.len()], &first, rate, "before the offset change");
    assert_stream(&msgs[first.len()..], &second, rate, "after the offset change");
    assert_seq_consecutive(&msgs, "across the offset change");
}

#[test]
fn past_24_hours_the_label_wraps_and_the_frame_count_grows() {
    for (sr, name) in [(48_000u32, "25"), (44_100, "29.97df")] {
        let rate = rate(name);
        let mut rig = Rig::new(sr, rate, 1024);
        // Two seconds before the timeline's 24-hour mark.
        let day = 24 * 3600 * i64::from(sr);
        rig.transport.locate(day - 2 * i64::from(sr));
        rig.play_seconds(3.0, 1024);
        let what = format!("across 24 h at {name}");
        let packets = rig.check(&what);
        let msgs = messages(&packets);
        assert!(msgs.iter().all(|m| !m.jump || m.seq == msgs[0].seq), "{what}: only the start is a jump");
        let wrap = msgs.iter().position(|m| m.timecode == Timecode::from_frame(0, rate)).expect("label wraps to zero");
        assert!(msgs[wrap].frame > 0, "{what}: the frame count is not wrapped");
        assert_eq!(msgs[wrap].frame, msgs[wrap - 1].frame + 1, "{what}: and it keeps counting");
    }
}
