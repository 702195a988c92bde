//! Activation life cycle: sample-rate change between activations (common and uncommon rates, the
//! frames' timing at the new rate), sample rates refused, many activate/deactivate cycles,
//! dropping an active instance. The leak checks over 1000 cycles are in `clap_conformance`.

use std::time::Duration;

use osc_timecode_core::protocol::system_time_from_timetag;
use osc_timecode_core::timecode::{frame_at_sample, frame_start_sample};
use osc_timecode_tests::expect::{Timing, assert_seq_consecutive, assert_stream, expected};
use osc_timecode_tests::receiver::messages;
use osc_timecode_tests::transport::Transport;

use crate::common::{Rig, rate, receive};

#[test]
fn sample_rate_change_between_activations_stays_exact() {
    let rate = rate("29.97df");
    let mut rig = Rig::new(44_100, rate, 1024);
    rig.play_seconds(1.5, 1024);
    let first = expected(rig.transport.history(), Timing::new(44_100, rate));
    let got_first = messages(&receive(&rig.rx, first.len()));
    assert_stream(&got_first, &first, rate, "at 44.1 kHz");
    let mut all = got_first;

    for sr in [96_000, 192_000, 48_000] {
        rig.plugin.deactivate();
        rig.plugin.activate(sr, 1024);
        let mut t = Transport::new(sr);
        t.locate(i64::from(sr) / 3);
        t.play();
        let report = rig.plugin.run(&mut t, u64::from(sr), 1024);
        assert_eq!(report.passthrough_mismatches, 0);
        let want = expected(t.history(), Timing::new(sr, rate));
        let got = messages(&receive(&rig.rx, want.len()));
        assert_stream(&got, &want, rate, &format!("after re-activating at {sr} Hz"));
        all.extend(got);
    }
    assert_seq_consecutive(&all, "seq continues across re-activations");
}

#[test]
fn twenty_activation_cycles_then_still_exact() {
    let sr = 48_000;
    let rate = rate("25");
    let mut rig = Rig::new(sr, rate, 512);
    for i in 0..20 {
        rig.plugin.deactivate();
        rig.plugin.activate(if i % 2 == 0 { 44_100 } else { sr }, 512);
        if i % 4 == 0 {
            // Some cycles process a few blocks, some none.
            let mut t = Transport::playing_from(rig.plugin.sample_rate(), i64::from(i) * 10_000);
            rig.plugin.run(&mut t, 4 * 512, 512);
        }
    }
    rig.plugin.deactivate();
    rig.plugin.activate(sr, 512);
    // Drain what the cycles sent.
    let _ = rig.rx.collect_until_quiet(Duration::from_millis(300), Duration::from_secs(5));
    rig.transport = Transport::new(sr);
    rig.play_seconds(1.0, 512);
    rig.check("after 20 activation cycles");
}

#[test]
fn dropping_an_active_instance_is_clean() {
    let sr = 48_000;
    for _ in 0..3 {
        let mut rig = Rig::new(sr, rate("30"), 256);
        rig.play_seconds(0.2, 256);
        let want = rig.expected();
        let got = messages(&receive(&rig.rx, want.len()));
        assert_seq_consecutive(&got, "before drop");
        // Dropped while active and mid-stream: the harness deactivates, the plugin stops its
        // network thread; the next instance starts clean.
        drop(rig);
    }
}

#[test]
fn uncommon_sample_rates_keep_frames_and_their_timing_exact_from_the_first_block() {
    // As a host does when the device's rate changes: deactivate, activate at the new rate, go on
    // from a position in the project. Each activation's frames are exact at its own rate (the
    // first is the frame under the position, as a jump), and so is their timing: two frames of
    // one block are timetagged their sample distance apart at the new rate, within a microsecond
    // (nanosecond rounding, and the network thread's wall-clock anchor may be refreshed between
    // them); a stale sample rate would space them wrong by milliseconds while numbering them right.
    let rate = rate("59.94df");
    let max_block = 16_384;
    let mut rig = Rig::new(44_100, rate, max_block);
    let mut all = Vec::new();
    let mut pairs_checked = 0;
    for (i, sr) in [11_025u32, 22_050, 32_000, 88_200, 176_400, 384_000, 44_100, 44_100].into_iter().enumerate() {
        rig.plugin.deactivate();
        rig.plugin.activate(sr, max_block);
        // A quarter-second grid plus one sample: rarely a frame's first sample.
        let start = (i as i64 * 7 + 3) * i64::from(sr) / 4 + 1;
        let mut t = Transport::playing_from(sr, start);
        let report = rig.plugin.run(&mut t, u64::from(sr) * 3 / 2, max_block);
        let what = format!("re-activated at {sr} Hz");
        let want = expected(t.history(), Timing::new(sr, rate));
        let packets = receive(&rig.rx, want.len());
        let got = messages(&packets);
        assert_stream(&got, &want, rate, &what);
        assert_eq!(got[0].frame, frame_at_sample(start, sr, rate), "{what}: the first frame is under the position");
        assert!(got[0].jump, "{what}: and a jump");

        // The block each frame (after the first) starts in, and its offset there.
        let block_of = |frame: i64| {
            let at = frame_start_sample(frame, sr, rate);
            report.block_log.iter().enumerate().find_map(|(b, r)| {
                let s = r.timeline_start.expect("a transport");
                (s <= at && at < s + i64::from(r.len)).then_some((b, at - s))
            })
        };
        for (pair, msgs) in packets.windows(2).zip(got.windows(2)) {
            let (Some((b0, o0)), Some((b1, o1))) = (block_of(msgs[0].frame), block_of(msgs[1].frame)) else { continue };
            if b0 != b1 || msgs[0].jump {
                continue;
            }
            let (t0, t1) = (system_time_from_timetag(pair[0].timetag()), system_time_from_timetag(pair[1].timetag()));
            let spacing = t1.duration_since(t0).expect("timetags in order within a block");
            let want = Duration::from_nanos(((o1 - o0) as u64 * 1_000_000_000).div_ceil(u64::from(sr)));
            let error = spacing.abs_diff(want);
            assert!(
                error <= Duration::from_micros(1),
                "{what}: frames {} and {} timetagged {spacing:?} apart, want {want:?}",
                msgs[0].frame,
                msgs[1].frame
            );
            pairs_checked += 1;
        }
        all.extend(got);
    }
    assert!(pairs_checked > 100, "timing checked on {pairs_checked} pairs of frames");
    assert_seq_consecutive(&all, "seq continues across re-activations");
}

#[test]
fn sample_rates_it_cannot_use_are_refused_and_a_good_one_works_after() {
    let rate = rate("25");
    let mut rig = Rig::new(48_000, rate, 512);
    rig.plugin.deactivate();
    for sr in [0.0, -48_000.0, 0.4, 2_000_000.0, f64::NAN, f64::INFINITY] {
        let result = rig.plugin.try_activate(sr, 512);
        assert!(result.is_err(), "activate at {sr} Hz must be refused");
        assert!(!rig.plugin.is_active(), "refused: still inactive");
    }
    rig.plugin.activate(48_000, 512);
    rig.transport = Transport::new(48_000);
    rig.play_seconds(1.0, 512);
    rig.check("activated at 48 kHz after refusals");
}
