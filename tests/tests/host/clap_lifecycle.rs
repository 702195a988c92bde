//! Activation life cycle: sample-rate change between activations, many activate/deactivate
//! cycles, dropping an active instance.

use std::time::Duration;

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
