//! What a plugin validator (clap-validator, pluginval) checks, in our own CLAP host: state
//! round trip into a fresh instance, parameter text conversions, leaks over many activations and
//! instances, process() on threads other than the main thread, blocks without transport, random
//! transport changes every block, empty and one-sample blocks, and the categories hosts sort the
//! plugin by.
//!
//! The leak tests measure the whole process, so each runs alone in a child process of this test
//! binary (`osc_timecode_tests::child`); the others run in parallel with the rest of the suite.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::time::{Duration, Instant};

use osc_timecode_core::timecode::frame_at_sample;
use osc_timecode_core::{FrameRate, Timecode};
use osc_timecode_tests::child::{Side, run_alone};
use osc_timecode_tests::clap::{ClapDescriptor, ClapPlugin, Param, ThreadCheckAnswers};
use osc_timecode_tests::cues::free_loopback_addr;
use osc_timecode_tests::expect::{Timing, assert_seq_consecutive, assert_stream, expected};
use osc_timecode_tests::procfs::ProcessCounts;
use osc_timecode_tests::receiver::{Receiver, messages};
use osc_timecode_tests::rng::Rng;
use osc_timecode_tests::state::NiceState;
use osc_timecode_tests::transport::{SpanStart, Transport};
use osc_timecode_tests::vst3host::vst3_class_infos;
use serde_json::{Value, json};

use crate::common::{Rig, rate, receive};

// ---------------------------------------------------------------------------------------------
// State

/// Every parameter at a value other than its default, as CLAP plain values.
fn non_default_params() -> [(Param, f64); 4] {
    [
        (Param::Rate, rate("29.97df").index() as f64),
        (Param::Output, 0.0),
        // 01:02:03
        (Param::Offset, 3723.0),
        (Param::SendStopped, 0.0),
    ]
}

/// Every setting at a value other than its default (loopback addresses only: nothing is sent
/// or received here, but the tests never name another host).
fn non_default_settings() -> serde_json::Map<String, Value> {
    let (target, listen) = (free_loopback_addr(), free_loopback_addr());
    let settings = json!({
        "targets": [target.to_string(), format!("[::1]:{}", target.port())],
        "keepalive_ms": 250,
        "output_latency_ms": 12.5,
        "offline": "realtime",
        "half_rate": true,
        "ltc": {"channel": "right", "level_dbfs": -20.5, "stopped": "still"},
        "artnet": {"targets": [free_loopback_addr().to_string()], "stream_id": 7},
        "mtc": {"enabled": true},
        "cues": {
            "enabled": false,
            "listen": listen.to_string(),
            "allow": ["127.0.0.1/32", "::1/128"],
            "token": "s3cret",
            "quantise": true,
            "note_length_ms": 250,
            "dedupe_ms": 2500,
            "defaults": false,
            "map": [
                {"address": "/cue/intro", "kind": "note", "channel": 2, "key": 60, "velocity": 100, "length_ms": 0},
                {"address": "/cue/intro/off", "kind": "note_off", "channel": 2, "key": 60},
                {"address": "/trigger/fader", "kind": "cc", "channel": 16, "number": 7, "value": 64},
                {"address": "/cue/blackout", "kind": "program", "channel": 1, "program": 12},
            ],
        },
    });
    let Value::Object(settings) = settings else { unreachable!("a JSON object literal") };
    settings
}

/// The first setting of `defaults` that `ours` leaves out or at its default value (descending
/// into the `cues` object), or a key `ours` has that `defaults` lacks: a setting added to the
/// plugin without a non-default value here fails the state test instead of going unchecked.
fn setting_not_covered(
    ours: &serde_json::Map<String, Value>,
    defaults: &serde_json::Map<String, Value>,
) -> Option<String> {
    if let Some(extra) = ours.keys().find(|k| !defaults.contains_key(*k)) {
        return Some(format!("{extra:?} is not a setting of the plugin"));
    }
    defaults.iter().find_map(|(key, default)| match (default, ours.get(key)) {
        (_, None) => Some(format!("{key:?} is not set")),
        (Value::Object(d), Some(Value::Object(o))) => setting_not_covered(o, d),
        (d, Some(o)) if o == d => Some(format!("{key:?} is at its default {d}")),
        _ => None,
    })
}

#[test]
fn state_round_trip_restores_every_parameter_and_setting_in_a_fresh_instance() {
    let mut original = ClapPlugin::load();
    let defaults = original.nice_state();
    let settings = non_default_settings();
    if let Some(why) = setting_not_covered(&settings, &defaults.settings()) {
        panic!("every setting must differ from its default to be tested: {why}");
    }

    for (p, value) in non_default_params() {
        assert_ne!(original.param_value(p).round(), value, "{p:?} starts at its default, not at {value}");
        original.set_param(p, value);
    }
    original.update_settings(|s| *s = settings.clone());
    let saved = original.save_state();
    let state = NiceState::from_clap_bytes(&saved);
    assert_eq!(state.settings(), settings, "the plugin keeps every setting as given (none dropped or rewritten)");
    for p in Param::ALL {
        assert_ne!(state.param(p.string_id()), defaults.param(p.string_id()), "{p:?} is saved at its new value");
    }

    let mut fresh = ClapPlugin::load();
    assert_eq!(fresh.nice_state(), defaults, "a new instance starts from the defaults, not from another's state");
    fresh.load_state(&saved);
    for (p, value) in non_default_params() {
        // nice-plug reports stepped values through an f32 normalised value: read them rounded,
        // as a host reads a stepped parameter.
        let got = fresh.param_value(p);
        assert!((got - value).abs() < 0.01, "{p:?} after loading: {got}, saved {value}");
    }
    let resaved = fresh.save_state();
    assert!(
        resaved == saved,
        "save → load → save must give the same bytes\n first: {}\nsecond: {}",
        String::from_utf8_lossy(&saved[8..]),
        String::from_utf8_lossy(&resaved[8..]),
    );
}

// ---------------------------------------------------------------------------------------------
// Parameter text

/// The plain values to convert for `p`: every step of a stepped parameter with few steps, a
/// spread (the ends, minute and hour boundaries, and seeded random seconds) for the offset.
fn text_values(plugin: &mut ClapPlugin, p: Param) -> Vec<f64> {
    let (min, max) = plugin.param_range(p);
    if p != Param::Offset {
        return (min as i64..=max as i64).map(|v| v as f64).collect();
    }
    let mut values = vec![0, 1, 59, 60, 61, 3599, 3600, 3723, 36_000, 43_199, 43_200, 86_340, 86_398, 86_399];
    let mut rng = Rng::new(0x0ff5e7);
    values.extend((0..200).map(|_| rng.range(min as i64, max as i64)));
    values.into_iter().map(|v| v as f64).collect()
}

#[test]
fn every_parameter_value_converts_to_text_and_back() {
    let mut plugin = ClapPlugin::load();
    for p in Param::ALL {
        let mut texts = BTreeSet::new();
        let values = text_values(&mut plugin, p);
        for &value in &values {
            let text = plugin.value_to_text(p, value).unwrap_or_else(|| panic!("{p:?}: no text for {value}"));
            assert!(
                !text.trim().is_empty()
                    && text.trim() == text
                    && text.len() < 64
                    && !text.chars().any(char::is_control),
                "{p:?} {value}: {text:?} is not a sensible display text"
            );
            let c_text = CString::new(text.clone()).expect("no NUL inside");
            let back =
                plugin.text_to_value(p, &c_text).unwrap_or_else(|| panic!("{p:?}: its own text {text:?} refused"));
            // nice-plug converts through an f32 normalised value (3599.99996 for 3600).
            assert!((back - value).abs() < 0.01, "{p:?}: {value} → {text:?} → {back}");
            texts.insert(text);
        }
        assert_eq!(
            texts.len(),
            values.iter().map(|v| *v as i64).collect::<BTreeSet<_>>().len(),
            "{p:?}: one text per value: {texts:?}"
        );
    }
    // What the texts say, against core's names and labels.
    for (index, rate) in FrameRate::ALL.into_iter().enumerate() {
        let text = plugin.value_to_text(Param::Rate, index as f64).expect("rate text");
        let number = rate.name().trim_end_matches("df");
        assert!(text.starts_with(number) && text.contains("fps"), "rate {}: {text:?}", rate.name());
        assert_eq!(text.contains("drop-frame"), rate.is_drop(), "rate {}: {text:?}", rate.name());
    }
    for seconds in [0u32, 3723, 86_399] {
        let text = plugin.value_to_text(Param::Offset, f64::from(seconds)).expect("offset text");
        let label =
            Timecode::new((seconds / 3600) as u8, (seconds / 60 % 60) as u8, (seconds % 60) as u8, 0, rate("25"))
                .expect("a valid label");
        assert_eq!(text, label.to_string(), "the offset reads as the label at the project's zero");
    }
    let (on, off) = (plugin.value_to_text(Param::Output, 1.0), plugin.value_to_text(Param::Output, 0.0));
    assert_ne!(on, off, "on and off read differently");
    // The README's way of typing an offset: HH:MM:SS, also with ;00 frames.
    for (typed, seconds) in [("01:00:00", 3600.0), (" 10:00:00;00 ", 36_000.0), ("23:59:59:00", 86_399.0)] {
        let got = plugin.text_to_value(Param::Offset, &CString::new(typed).expect("no NUL"));
        assert!(got.is_some_and(|v| (v - seconds).abs() < 0.01), "offset {typed:?} → {got:?}, want {seconds}");
    }
}

#[test]
fn invalid_parameter_text_and_values_are_refused_without_harm() {
    let mut plugin = ClapPlugin::load();
    let long = "9".repeat(300);
    let common = ["", "   ", "not a value", "NaN", "-1", "1e309", "\u{1F39B}", long.as_str()];
    let specific: [(Param, &[&str]); 4] = [
        (Param::Rate, &["26 fps", "fps", "29.97 fps drop", "25 fps 25 fps"]),
        (Param::Output, &["maybe", "yes please", "2", "onn", "of"]),
        (
            Param::Offset,
            &["24:00:00", "00:60:00", "00:00:60", "01:00:00:05", "1:00:00", "01:00", "-01:00:00", "01-00-00"],
        ),
        (Param::SendStopped, &["maybe", "2", "tru", "0.5"]),
    ];
    for (p, texts) in specific {
        let before = plugin.param_value(p);
        for text in common.iter().chain(texts) {
            let got = plugin.text_to_value(p, &CString::new(*text).expect("no NUL"));
            assert_eq!(got, None, "{p:?}: {text:?} must be refused, got {got:?}");
        }
        // Not UTF-8 at all.
        let got = plugin.text_to_value(p, c"\xff\xfe01:00:00");
        assert_eq!(got, None, "{p:?}: non-UTF-8 text must be refused");
        assert_eq!(plugin.param_value(p), before, "{p:?}: converting text changes nothing");

        // Out-of-range and non-finite plain values: a text (the nearest value's) or a refusal,
        // never a crash.
        let (min, max) = plugin.param_range(p);
        let text_at = |plugin: &mut ClapPlugin, v: f64| plugin.value_to_text(p, v);
        let (at_min, at_max) = (text_at(&mut plugin, min), text_at(&mut plugin, max));
        for (v, clamped) in [(min - 10.0, &at_min), (max + 1000.0, &at_max), (-1e300, &at_min), (1e300, &at_max)] {
            let got = text_at(&mut plugin, v);
            assert!(got.is_none() || got == *clamped, "{p:?}: {v} reads {got:?}, not the nearest value's {clamped:?}");
        }
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let got = text_at(&mut plugin, v);
            assert!(got.as_ref().is_none_or(|t| !t.is_empty()), "{p:?}: {v} reads {got:?}");
        }
        // A host's short buffer: the text is cut, NUL-terminated, never overflowing.
        let id = plugin.param_id(p);
        for capacity in [1, 2, 4] {
            let got = plugin.value_to_text_in(id, max, capacity);
            assert!(got.as_ref().is_none_or(|t| t.len() < capacity), "{p:?}: {got:?} in a {capacity}-byte buffer");
        }
    }
    // An ID the plugin does not have.
    let unknown = osc_timecode_tests::clap::nice_plug_param_hash("no_such_param");
    let unknown = clack_host::prelude::ClapId::new(unknown);
    assert_eq!(plugin.value_to_text_by_id(unknown, 0.0), None, "value_to_text of an unknown ID");
    assert_eq!(plugin.text_to_value_by_id(unknown, c"0"), None, "text_to_value of an unknown ID");
}

// ---------------------------------------------------------------------------------------------
// Leaks

/// Activation cycles in [`thousand_activation_cycles_leak_nothing`].
const CYCLES: u32 = 1000;
/// Instances in [`hundred_instances_leak_nothing`].
const INSTANCES: u32 = 100;
/// Most the resident set may grow over the cycles or the instances. Each activation allocates
/// about 0.6 MiB (the frame ring, 4096 frames of about 64 bytes; the network thread's pending
/// queue, as many; the cue ring and the cue thread's buffers), so leaking any of them grows it by
/// hundreds of MiB over 1000 cycles, and even 8 KiB a cycle (a thread's bookkeeping, one receive
/// buffer) by 8 MiB. What grows without a leak is the allocator keeping freed pages in its
/// arenas: measured at 0.2 to 0.5 MiB.
const RSS_GROWTH_BOUND_KIB: u64 = 8 * 1024;
/// Longest a leak test's child process may run.
const CHILD_TIMEOUT: Duration = Duration::from_secs(240);

/// The test's name in this binary, for [`run_alone`].
fn test_name(function: &str) -> String {
    let module = module_path!().split_once("::").map_or(module_path!(), |(_, rest)| rest);
    format!("{module}::{function}")
}

/// Prints the `measured:` lines of a child's output (so a `--nocapture` run of the suite shows
/// the numbers), and returns them.
fn report_measurements(side: Side) -> Vec<String> {
    let Side::Parent { output, elapsed } = side else { return Vec::new() };
    // libtest prints `test NAME ... ` before the test's first line: take the lines from the tag.
    let lines: Vec<String> = output.lines().filter_map(|l| l.find("measured:").map(|i| l[i..].to_owned())).collect();
    for line in &lines {
        eprintln!("{line}");
    }
    eprintln!("measured: child process ran {elapsed:.1?}");
    lines
}

/// A plugin sending to `rx` and listening for cues on a free loopback port (not the default
/// 5005, which other processes may hold), keep-alive off.
fn leak_test_plugin(rx: &Receiver) -> ClapPlugin {
    let mut plugin = ClapPlugin::load();
    let listen = free_loopback_addr();
    plugin.update_settings(|s| {
        s.insert("targets".into(), json!([rx.addr().to_string()]));
        s.insert("keepalive_ms".into(), json!(0));
        s.insert("cues".into(), json!({"listen": listen.to_string()}));
    });
    plugin
}

/// Checks `after` against `before`: the same threads, descriptors and sockets, and the resident
/// set grown by less than [`RSS_GROWTH_BOUND_KIB`].
fn assert_nothing_leaked(what: &str, before: &ProcessCounts, after: &ProcessCounts) {
    println!("measured: {what}: before {}; after {}", before.summary(), after.summary());
    assert_eq!(after.threads, before.threads, "{what}: threads leaked");
    assert_eq!(after.sockets, before.sockets, "{what}: sockets leaked");
    assert_eq!(after.fds, before.fds, "{what}: file descriptors leaked");
    let growth = after.rss_kib.saturating_sub(before.rss_kib);
    assert!(growth < RSS_GROWTH_BOUND_KIB, "{what}: resident set grew {growth} KiB (bound {RSS_GROWTH_BOUND_KIB} KiB)");
}

#[test]
#[cfg_attr(not(target_os = "linux"), ignore = "reads /proc (Linux only)")]
fn thousand_activation_cycles_leak_nothing() {
    let side = run_alone(&test_name("thousand_activation_cycles_leak_nothing"), CHILD_TIMEOUT);
    if side != Side::Child {
        let lines = report_measurements(side);
        assert!(lines.iter().any(|l| l.contains("activation cycles")), "the child measured the cycles: {lines:?}");
        return;
    }
    // In the child process, alone: every thread and socket here is the harness's or the plugin's.
    let rx = Receiver::bind();
    let mut plugin = leak_test_plugin(&rx);
    let sr = 48_000;
    // Warm up: the library's and the allocator's one-time state is not a leak.
    for _ in 0..20 {
        plugin.activate(sr, 512);
        let mut t = Transport::playing_from(sr, 0);
        plugin.run(&mut t, 4 * 512, 512);
        plugin.deactivate();
    }
    let before = ProcessCounts::now();

    // While active, the counts see the plugin's two threads and its cue socket: the measure works.
    plugin.activate(sr, 512);
    // (The plugin's threads name themselves and bind their sockets on their own time.)
    let active = ProcessCounts::settle(Duration::from_secs(5), |c| {
        c.threads_named("osc-timecode-net") == 1
            && c.threads_named("osc-timecode-cues") == 1
            && c.sockets > before.sockets
    });
    assert_eq!(
        (active.threads_named("osc-timecode-net"), active.threads_named("osc-timecode-cues")),
        (1, 1),
        "active: {:?}",
        active.threads
    );
    assert_eq!(active.sockets, before.sockets + 1, "active: the cue socket ({})", active.summary());
    assert_eq!(active.threads.len(), before.threads.len() + 2, "active: {:?}", active.threads);
    println!("measured: one active instance: {}", active.summary());
    plugin.deactivate();

    let started = Instant::now();
    let (mut slowest, mut in_activate, mut in_deactivate) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for cycle in 0..CYCLES {
        let cycle_started = Instant::now();
        plugin.activate(if cycle % 2 == 0 { 44_100 } else { sr }, 512);
        in_activate += cycle_started.elapsed();
        if cycle % 10 == 0 {
            // Some cycles send frames (and open the sending socket), most only start and stop.
            let _ = rx.drain_now();
            let (cycle_sr, from) = (plugin.sample_rate(), i64::from(cycle) * 4096);
            plugin.run(&mut Transport::playing_from(cycle_sr, from), 4 * 512, 512);
            if cycle % 100 == 0 {
                // Deactivating drops the frames not yet due: wait for the first to know they flow,
                // right at this activation's rate.
                let first = messages(&rx.collect(1, Duration::from_secs(5)));
                let want = frame_at_sample(from, cycle_sr, rate("25"));
                assert!(
                    first.first().is_some_and(|m| m.jump && m.frame == want),
                    "cycle {cycle}: {first:?}, want {want}"
                );
            }
        }
        let deactivating = Instant::now();
        plugin.deactivate();
        in_deactivate += deactivating.elapsed();
        slowest = slowest.max(cycle_started.elapsed());
    }
    let elapsed = started.elapsed();
    println!(
        "measured: {CYCLES} activation cycles took {elapsed:.2?} ({:.2?} per cycle, slowest {slowest:.2?}; \
         in activate() {in_activate:.2?}, in deactivate() {in_deactivate:.2?})",
        elapsed / CYCLES
    );
    let after = ProcessCounts::settle(Duration::from_secs(2), |c| c.threads == before.threads);
    assert_nothing_leaked(&format!("{CYCLES} activation cycles"), &before, &after);
    drop(plugin);
}

#[test]
#[cfg_attr(not(target_os = "linux"), ignore = "reads /proc (Linux only)")]
fn hundred_instances_leak_nothing() {
    let side = run_alone(&test_name("hundred_instances_leak_nothing"), CHILD_TIMEOUT);
    if side != Side::Child {
        let lines = report_measurements(side);
        assert!(lines.iter().any(|l| l.contains("instances")), "the child measured the instances: {lines:?}");
        return;
    }
    let rx = Receiver::bind();
    let sr = 48_000;
    // A host keeps the library loaded while it creates and removes instances: this one holds it
    // (and warms up the one-time state).
    let mut keeper = leak_test_plugin(&rx);
    keeper.activate(sr, 512);
    keeper.run(&mut Transport::playing_from(sr, 0), 4 * 512, 512);
    keeper.deactivate();
    for _ in 0..5 {
        let mut warm = leak_test_plugin(&rx);
        warm.activate(sr, 512);
        drop(warm);
    }
    let before = ProcessCounts::now();

    let started = Instant::now();
    for i in 0..INSTANCES {
        let _ = rx.drain_now();
        let mut plugin = leak_test_plugin(&rx);
        plugin.activate(sr, 512);
        let from = i64::from(i) * 10_000;
        plugin.run(&mut Transport::playing_from(sr, from), 2 * 512, 512);
        let first = messages(&rx.collect(1, Duration::from_secs(5)));
        let want = frame_at_sample(from, sr, rate("25"));
        assert!(first.first().is_some_and(|m| m.jump && m.frame == want), "instance {i}: {first:?}, want {want}");
        match i % 3 {
            // Dropped while active (the harness deactivates, as a host must).
            0 => {}
            1 => plugin.deactivate(),
            // Deactivated, activated again, dropped active.
            _ => {
                plugin.deactivate();
                plugin.activate(44_100, 256);
            }
        }
        drop(plugin);
    }
    let elapsed = started.elapsed();
    println!("measured: {INSTANCES} instances created, activated, processed and dropped in {elapsed:.2?}");
    let after = ProcessCounts::settle(Duration::from_secs(2), |c| c.threads == before.threads);
    assert_nothing_leaked(&format!("{INSTANCES} instances"), &before, &after);
    drop(keeper);
}

// ---------------------------------------------------------------------------------------------
// Threads

#[test]
fn process_runs_on_a_new_thread_each_run_and_thread_check_tells_the_threads_apart() {
    let sr = 48_000;
    let mut rig = Rig::new(sr, rate("25"), 512);
    let main = std::thread::current().id();
    assert_eq!(rig.plugin.thread_check_answers(), ThreadCheckAnswers { is_main: true, is_audio: false });

    // nice-plug asks the host's thread-check when it runs a main-thread task (a state load
    // schedules one): it must be asked, and on the main thread.
    let before = rig.plugin.thread_checks();
    let state = rig.plugin.save_state();
    rig.plugin.load_state(&state);
    let after = rig.plugin.thread_checks();
    assert!(after.main_asked_on_main > before.main_asked_on_main, "the plugin asks is_main_thread: {after:?}");

    rig.transport.play();
    let mut audio_threads = Vec::new();
    // Runs of 20 blocks, then runs of one block: every block on a thread of its own.
    let runs: Vec<u64> = [20u64; 5].into_iter().chain([1; 20]).collect();
    for blocks in runs {
        let report = rig.run(blocks * 512, 512);
        let thread = report.audio_thread.expect("the run's thread");
        assert_ne!(thread, main, "process() runs on an audio thread, not the main thread");
        assert!(!audio_threads.contains(&thread), "a new audio thread for every run");
        audio_threads.push(thread);
        assert_eq!(
            report.audio_thread_check,
            Some(ThreadCheckAnswers { is_main: false, is_audio: true }),
            "thread-check on the audio thread"
        );
        // The main thread meanwhile does main-thread things.
        assert_eq!(rig.plugin.thread_check_answers(), ThreadCheckAnswers { is_main: true, is_audio: false });
        let _ = rig.plugin.save_state();
    }
    let counts = rig.plugin.thread_checks();
    println!("measured: thread-check questions over the runs: {counts:?}");
    assert!(counts.audio_asked_on_audio >= 25 && counts.main_asked_on_audio >= 25, "{counts:?}");
    // Changing threads between blocks is not a discontinuity: one stream, one jump at the start.
    let packets = rig.check("25 runs on 25 audio threads");
    assert_eq!(messages(&packets).iter().filter(|m| m.jump).count(), 1);
}

// ---------------------------------------------------------------------------------------------
// No transport (clap_transport's `blocks_without_transport_...` covers keep-alive off)

#[test]
fn null_transport_with_keepalive_on_sends_nothing_not_even_keepalives() {
    let sr = 48_000;
    let rate = rate("25");
    let keepalive = Duration::from_millis(100);
    let mut rig = Rig::with(sr, rate, 480, keepalive.as_millis() as u32, |_| {});
    let block = Duration::from_millis(10);

    // From activation on, without a transport: nothing at all, for several keep-alive periods.
    for _ in 0..50 {
        rig.plugin.run_without_transport(&mut rig.transport, 1, 480);
        std::thread::sleep(block);
    }
    let got = rig.rx.drain_now();
    assert!(got.is_empty(), "no position, no timecode: got {:?}", messages(&got));

    // Parked with a position: the parked frame and its keep-alives.
    rig.transport.locate(10 * i64::from(sr));
    for _ in 0..40 {
        rig.run(480, 480);
        std::thread::sleep(block);
    }
    let parked = messages(&rig.rx.collect_for(Duration::from_millis(50)));
    assert!(parked.len() >= 2, "the parked frame and keep-alives: {parked:?}");
    let parked_frame = parked[0].frame;

    // The host stops giving a position: the parked position is no longer known, so it is not
    // repeated as if it were (PROTOCOL.md: "host gives no position | nothing").
    for _ in 0..60 {
        rig.plugin.run_without_transport(&mut rig.transport, 1, 480);
        std::thread::sleep(block);
    }
    let during = messages(&rig.rx.collect_for(Duration::from_millis(50)));
    assert!(
        during.iter().all(|m| m.frame == parked_frame) && during.len() <= 1,
        "after the position goes away, at most a keep-alive already due; got {during:?}"
    );

    // A position again, playing: a jump there, then the frames.
    rig.transport.clear_history();
    rig.transport.locate(20 * i64::from(sr));
    rig.play_seconds(0.5, 480);
    let packets = rig.check("playing after blocks without transport");
    assert!(messages(&packets)[0].jump, "the first frame after no position is a jump");
}

// ---------------------------------------------------------------------------------------------
// Random transport

/// Largest block in the random runs.
const RANDOM_MAX_BLOCK: u32 = 2048;

/// A random block length: sometimes 0 or 1, mostly small to host-sized.
fn random_block(rng: &mut Rng) -> u32 {
    match rng.range(0, 19) {
        0 => 0,
        1 => 1,
        2..=5 => rng.range(2, 63) as u32,
        _ => rng.range(64, i64::from(RANDOM_MAX_BLOCK)) as u32,
    }
}

/// A random position at least 3 samples from each of `avoid` (one-sample wobble must not be
/// mistaken for a locate): before zero (pre-roll) to a minute in.
fn random_position(rng: &mut Rng, sr: u32, avoid: &[i64]) -> i64 {
    loop {
        let p = rng.range(-3 * i64::from(sr), 60 * i64::from(sr));
        if avoid.iter().all(|a| (p - a).abs() > 2) {
            return p;
        }
    }
}

/// What the random script did, for the failure message.
#[derive(Debug, Default)]
struct ScriptStats {
    /// Moves of each kind: play, stop, locate, loop on, loop off, tempo.
    moves: [u32; 6],
    /// Blocks of 0 and of 1 sample.
    tiny_blocks: [u32; 2],
}

/// Plays `blocks` random blocks with a random transport move before about one in six: play,
/// stop, locate (also into pre-roll), loop on or off, tempo. Moves a host cannot make between
/// two blocks without the plugin seeing them as something else are left out (see below).
fn random_transport_run(seed: u64, sr: u32, rate_name: &str, blocks: usize, wobble: bool) {
    let rate = rate(rate_name);
    let mut rig = Rig::new(sr, rate, RANDOM_MAX_BLOCK);
    rig.transport.wobble = wobble;
    let mut rng = Rng::new(seed);
    let mut stats = ScriptStats::default();
    // Whether the last block with samples was rolling: a stop and a play need one such block
    // between them (stop + play with no block between is no stop at all for the plugin).
    let mut last_block_playing = false;
    let report = rig.plugin.run_scripted(&mut rig.transport, blocks, |t, _| {
        if rng.percent(16) {
            let loop_ends = t.loop_range.map_or(vec![], |(s, e)| vec![s, e]);
            match rng.range(0, 5) {
                0 if !t.playing && !last_block_playing => {
                    t.play();
                    stats.moves[0] += 1;
                }
                1 if t.playing && last_block_playing => {
                    t.stop();
                    stats.moves[1] += 1;
                }
                2 => {
                    let avoid: Vec<i64> = [t.position].into_iter().chain(loop_ends).collect();
                    let to = random_position(&mut rng, sr, &avoid);
                    t.locate(to);
                    stats.moves[2] += 1;
                }
                // A loop set or cleared just after a wrap between blocks, or just before a
                // locate lands on its start, would re-label that jump: change loops only when
                // the next block continues.
                3 if t.next_span_start() == SpanStart::Continue || !t.playing => {
                    // Mostly around the playhead, so that it wraps; sometimes anywhere.
                    let start = loop {
                        let near = t.position + rng.range(-i64::from(sr), i64::from(sr) / 2);
                        let start = if rng.percent(75) { near } else { random_position(&mut rng, sr, &[]) };
                        if (start - t.position).abs() > 2 {
                            break start;
                        }
                    };
                    let len = rng.range(200, 3 * i64::from(sr) / 2);
                    t.set_loop(Some((start, start + len)));
                    stats.moves[3] += 1;
                }
                4 if (t.next_span_start() == SpanStart::Continue || !t.playing) && rng.percent(30) => {
                    t.set_loop(None);
                    stats.moves[4] += 1;
                }
                5 => {
                    t.tempo = rng.float(40.0, 240.0);
                    stats.moves[5] += 1;
                }
                _ => {}
            }
        }
        let len = random_block(&mut rng);
        if len > 0 {
            last_block_playing = t.playing;
        }
        if len <= 1 {
            stats.tiny_blocks[len as usize] += 1;
        }
        len
    });
    assert_eq!(report.passthrough_mismatches, 0, "pass-through");
    let what = format!("seed {seed:#x}, {sr} Hz, {rate_name}, wobble {wobble}: {stats:?}");
    assert!(stats.moves.iter().all(|&n| n > 0) && stats.tiny_blocks.iter().all(|&n| n > 0), "{what}: every move");
    let packets = rig.check(&what);
    let msgs = messages(&packets);
    println!("measured: random transport {what}: {} blocks, {} messages", report.blocks, msgs.len());
    assert!(msgs.len() > 500, "{what}: a real run, got {} messages", msgs.len());
    assert!(msgs.iter().any(|m| m.looped) && msgs.iter().any(|m| !m.playing), "{what}: loops and stops happened");
}

#[test]
fn random_transport_every_block_seed_1() {
    random_transport_run(0x5eed_0001, 48_000, "29.97df", 5000, false);
}

#[test]
fn random_transport_every_block_seed_2_with_wobble() {
    random_transport_run(0x5eed_0002, 44_100, "25", 5000, true);
}

#[test]
fn random_transport_every_block_seed_3() {
    random_transport_run(0x5eed_0003, 96_000, "59.94df", 5000, false);
}

// ---------------------------------------------------------------------------------------------
// Empty and one-sample blocks

/// CLAP keeps a block's length within the activation's `[min, max]`, itself within
/// `[1, INT32_MAX]` (`plugin.h`, `activate`), so an empty block breaks the contract; VST3 hosts do
/// send them (`numSamples == 0`, to flush parameters), and clack-host passes one through (its
/// `frames_count` is the shortest buffer's length). nice-plug's CLAP wrapper then applies the
/// block's parameter events but does not call the plugin's `process()` (the output buffers are
/// empty; debug builds log "Debug assertion failed: buffer_is_valid"). So an empty block must
/// send nothing and change nothing, and the transport model plays nothing for it.
#[test]
fn empty_blocks_change_nothing_and_one_sample_blocks_stay_exact() {
    let sr = 48_000;
    let rate = rate("30");
    let mut rig = Rig::new(sr, rate, 512);
    // Empty blocks while stopped, around a start, inside a run of one-sample blocks, at a
    // locate and at a loop wrap: the stream is that of the same blocks without the empty ones.
    rig.plugin.run_blocks(Some(&mut rig.transport), &[0, 0, 1, 0, 512]);
    rig.transport.locate(1600 - 3);
    rig.transport.play();
    let sizes: Vec<u32> = [0, 1, 0, 1, 1, 0, 0, 1, 512, 0].into_iter().chain(std::iter::repeat_n(1, 3200)).collect();
    rig.plugin.run_blocks(Some(&mut rig.transport), &sizes);
    rig.transport.locate(5 * i64::from(sr));
    rig.plugin.run_blocks(Some(&mut rig.transport), &[0, 0, 1, 0, 333, 0, 512, 0]);
    rig.transport.set_loop(Some((5 * i64::from(sr), 5 * i64::from(sr) + 1700)));
    let sizes: Vec<u32> = (0..400).map(|i| [0, 1, 7, 0, 512][i % 5]).collect();
    rig.plugin.run_blocks(Some(&mut rig.transport), &sizes);
    let packets = rig.check("empty and one-sample blocks");
    let msgs = messages(&packets);
    let jumps = msgs.iter().filter(|m| m.jump && m.playing && !m.looped).count();
    assert_eq!(jumps, 2, "the start and the locate are the only jumps while playing");
    assert!(msgs.iter().filter(|m| m.looped).count() >= 3, "the loop wrapped");

    // A parameter change that comes in an empty block (as VST3 hosts flush parameters) applies
    // from the next block: an offset change, so a jump to the new label.
    rig.transport.clear_history();
    rig.transport.set_loop(None);
    rig.plugin.set_param(Param::Offset, 3600.0);
    rig.plugin.run_blocks(Some(&mut rig.transport), &[0]);
    assert_eq!(rig.plugin.param_value(Param::Offset).round(), 3600.0, "applied in the empty block");
    rig.transport.resync();
    rig.run(u64::from(sr) / 2, 512);
    let want = expected(rig.transport.history(), Timing::new(sr, rate).with_offset_seconds(3600));
    let got = messages(&receive(&rig.rx, want.len()));
    assert_stream(&got, &want, rate, "offset changed in an empty block");
    assert_seq_consecutive(&[msgs, got].concat(), "one sequence across both phases");
}

// ---------------------------------------------------------------------------------------------
// What hosts sort the plugin by

#[test]
fn declares_clap_features_vst3_subcategories_and_parameters() {
    let descriptor = ClapDescriptor::read();
    assert_eq!(descriptor.id, osc_timecode_tests::bundle::CLAP_ID);
    assert_eq!(descriptor.name, osc_timecode_tests::bundle::PLUGIN_NAME);
    assert!(!descriptor.vendor.is_empty(), "a vendor");
    assert_eq!(descriptor.version, env!("CARGO_PKG_VERSION"), "the workspace's version");
    // No placeholder link: the package's homepage, empty while it has none.
    assert_eq!(descriptor.url, env!("CARGO_PKG_HOMEPAGE"), "the workspace's homepage");
    assert!(!descriptor.url.contains(".invalid"), "no placeholder URL: {}", descriptor.url);
    // CLAP's main categories (`plugin-features.h`): exactly one, and it is an audio effect.
    let main = ["instrument", "audio-effect", "note-effect", "note-detector", "analyzer"];
    let mains: Vec<&String> = descriptor.features.iter().filter(|f| main.contains(&f.as_str())).collect();
    assert_eq!(mains, ["audio-effect"], "main category in {:?}", descriptor.features);
    assert!(descriptor.features.iter().any(|f| f == "utility"), "sub-category utility in {:?}", descriptor.features);

    let mut plugin = ClapPlugin::load();
    assert_eq!(
        plugin.param_count(),
        (Param::ALL.len() + Param::MACROS.len()) as u32,
        "the four parameters and the eight Cue Macros"
    );

    let classes = vst3_class_infos();
    let audio: Vec<_> = classes.iter().filter(|c| c.category == "Audio Module Class").collect();
    assert_eq!(audio.len(), 1, "one processor class: {classes:?}");
    let audio = audio[0];
    assert_eq!(audio.name, descriptor.name);
    assert_eq!(audio.vendor, descriptor.vendor);
    let subs: Vec<&str> = audio.sub_categories.split('|').collect();
    assert_eq!(subs.first(), Some(&"Fx"), "the main VST3 category first: {:?}", audio.sub_categories);
    assert!(subs.contains(&"Tools"), "VST3 sub-category Tools: {:?}", audio.sub_categories);
}

#[test]
fn state_round_trip_check_notices_a_setting_left_out_or_at_its_default() {
    let defaults = ClapPlugin::load().nice_state().settings();
    assert_eq!(setting_not_covered(&non_default_settings(), &defaults), None);
    let mut left_out = non_default_settings();
    left_out.remove("keepalive_ms");
    assert!(setting_not_covered(&left_out, &defaults).is_some_and(|w| w.contains("keepalive_ms")));
    let mut at_default = non_default_settings();
    at_default["cues"]["quantise"] = json!(false);
    assert!(setting_not_covered(&at_default, &defaults).is_some_and(|w| w.contains("quantise")));
}
