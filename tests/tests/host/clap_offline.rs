//! Offline render (bounce) with the `offline = "realtime"` policy in the CLAP host: the host
//! processes blocks as fast as it can while the network thread paces the frames out at real
//! time, so frames pile up. Issue 14: the pile was an unbounded queue on the network thread
//! (tens of MB for a long film) and the frames left at deactivation were counted nowhere.
//!
//! The test looks at the whole process's memory and at the plugin's log, so it runs alone in a
//! child process (see [`crate::common::in_child`]). No assertion is about speed.

use std::time::{Duration, Instant};

use osc_timecode_tests::cues::{cues_settings, free_loopback_addr, set_cues};
use osc_timecode_tests::procfs::{hwm_kib, reset_hwm, rss_kib};
use serde_json::json;

use crate::common::{PluginLog, Rig, rate, stop_lines};

/// Longest the child process may run.
const CHILD_TIMEOUT: Duration = Duration::from_secs(600);
/// How much the process's peak memory may grow over the hour: generous for the allocator. The
/// old unbounded queue held every frame of the hour on the network thread: 216,000 frames at
/// 60 fps, over 13 MiB in a `VecDeque` that doubles, 20 MiB at its peak.
const MEMORY_MARGIN_KIB: u64 = 4 * 1024;
/// Frames that can wait at most: the ring (4096) plus the network thread's queue (4096),
/// `QUEUE_CAPACITY` each in plugin/src/network.rs.
const MOST_WAITING: u64 = 2 * 4096;

/// Runs `function` of this module alone in a child process.
fn in_child(function: &str) -> bool {
    crate::common::in_child(module_path!(), function, CHILD_TIMEOUT)
}

#[test]
#[cfg_attr(not(target_os = "linux"), ignore = "reads /proc (Linux only)")]
fn an_hour_long_realtime_bounce_stays_in_bounded_memory_and_every_frame_is_counted() {
    if !in_child("an_hour_long_realtime_bounce_stays_in_bounded_memory_and_every_frame_is_counted") {
        return;
    }
    let log = PluginLog::new();
    let (sr, block) = (48_000, 4096);
    let mut rig = Rig::with(sr, rate("60"), block, 0, |p| {
        p.update_settings(|s| {
            s.insert("offline".into(), json!("realtime"));
            // Not the default cue port, which other processes may hold.
            set_cues(s, cues_settings(free_loopback_addr(), json!({})));
        });
        p.set_render_offline(true);
    });
    rig.transport.play();
    // Warm-up: threads, rings and the allocator's arenas exist before the baseline.
    rig.run(10 * u64::from(sr), block);
    reset_hwm();
    let rss_before = rss_kib();

    // The hour, as fast as the host goes, a minute per run so the harness's own record of each
    // run is freed before the next.
    let started = Instant::now();
    for _ in 0..60 {
        rig.run(60 * u64::from(sr), block);
    }
    let bounce = started.elapsed();
    let (rss_after, hwm_after) = (rss_kib(), hwm_kib());
    println!(
        "measured: an hour of 60 fps bounced in {bounce:.1?}; VmRSS {rss_before} -> {rss_after} KiB, VmHWM \
         {hwm_after} KiB"
    );
    assert!(
        hwm_after <= rss_before + MEMORY_MARGIN_KIB,
        "peak {hwm_after} KiB, {rss_before} KiB before the hour: frames pile up without bound"
    );

    // Every frame the audio thread produced was sent, dropped at the full ring (queue_full) or
    // still waiting when the network thread stopped (pending_at_stop): none is lost uncounted.
    rig.plugin.deactivate();
    let produced = rig.expected().len() as u64;
    let counts = stop_lines(&log, 1).remove(0);
    println!("measured: {produced} frames produced; stop line {counts:?}");
    let (sent, full, left) = (counts["sent"], counts["queue_full"], counts["pending_at_stop"]);
    assert_eq!((counts["send_errors"], counts["bind_errors"]), (0, 0), "{counts:?}");
    assert_eq!(sent + full + left, produced, "{counts:?}: sent + queue_full + pending_at_stop");
    assert!(full > 0, "the bounce outran the pacing, so the ring filled: {counts:?}");
    assert!(left <= MOST_WAITING, "at most a full ring and a full queue wait: {counts:?}");
    assert!(sent >= 1, "paced frames went out: {counts:?}");
    // One stop line, from the deactivation (a moment for a late second one to show up).
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(log.count(&["timecode output stopped"]), 1, "{:#?}", log.lines());
}
