//! Fault injection and security in the CLAP host: the cue port taken when the plugin activates,
//! targets the OS refuses, two instances sending to one receiver and wanting one cue port, a
//! flood while timecode plays, and hostile packets at the cue input.
//!
//! These tests look at the whole process (its memory, the files under its home directory) and at
//! the plugin's log, which nice-plug writes to standard error or to the file `NICE_LOG` names,
//! read once when the library loads. So each runs alone in a child process of this test binary
//! ([`osc_timecode_tests::child`]) with a log file, `HOME` and `XDG_CONFIG_HOME` of its own.
//!
//! No assertion is about speed (house rule): timeouts bound tests that fail; "within ~2 s"
//! checks are liveness (the cue thread retries a taken port every second); "every block in time"
//! means no `process()` call waited on the network (a generous bound on how late a real-time
//! paced block started).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use osc_timecode_core::protocol::TimecodeMessage;
use osc_timecode_tests::clap::{ClapPlugin, Midi, Param, RunReport};
use osc_timecode_tests::cues::{
    CueSender, CueValue, IMMEDIATELY, NO_REPLY_WINDOW, bundle, cues_settings, encode, flood, free_loopback_addr,
    message, nested, set_cues,
};
use osc_timecode_tests::expect::{Timing, assert_stream, expected};
use osc_timecode_tests::procfs::{hwm_kib, reset_hwm, rss_kib};
use osc_timecode_tests::receiver::{Receiver, messages};
use osc_timecode_tests::transport::Transport;
use rosc::{OscPacket, OscType};
use serde_json::json;

use crate::common::{CueRig, PluginLog, Rig, rate, receive, settled_status, stop_lines};

/// Longest a child process may run.
const CHILD_TIMEOUT: Duration = Duration::from_secs(240);
/// How late a real-time paced block may start before the test says a `process()` call waited:
/// far more than any block lasts here (10.7 ms), far less than a blocking call would add up to.
const LATE_LIMIT: Duration = Duration::from_millis(250);
/// How much the process's peak memory may grow over a flood: generous for the allocator's
/// arenas; an unbounded queue of 60 KB packets would pass it within a second.
const MEMORY_MARGIN_KIB: u64 = 16 * 1024;

/// Runs `function` of this module alone in a child process (see [`crate::common::in_child`]).
fn in_child(function: &str) -> bool {
    crate::common::in_child(module_path!(), function, CHILD_TIMEOUT)
}

/// [`in_child`] in a network namespace of its own ([`crate::common::in_child_without_network`]).
fn in_child_without_network(function: &str) -> bool {
    crate::common::in_child_without_network(module_path!(), function, CHILD_TIMEOUT)
}

/// How late the latest block of a real-time paced run started, after its due time (the run's
/// start plus the samples before it): a `process()` call that waited shows here, in the block
/// after it.
fn latest_block_start(report: &RunReport, sample_rate: u32) -> Duration {
    let started = report.started_wall.expect("a run records its start");
    let mut samples = 0u64;
    let mut latest = Duration::ZERO;
    for block in &report.block_log {
        let due = started + Duration::from_nanos(samples * 1_000_000_000 / u64::from(sample_rate));
        latest = latest.max(block.wall_start.duration_since(due).unwrap_or_default());
        samples += u64::from(block.len);
    }
    latest
}

/// Every block of a real-time run returned in time: none started more than [`LATE_LIMIT`] late,
/// and the whole run took its audio's duration plus at most that.
fn assert_blocks_in_time(report: &RunReport, sample_rate: u32, what: &str) {
    let late = latest_block_start(report, sample_rate);
    let audio = Duration::from_nanos(report.samples * 1_000_000_000 / u64::from(sample_rate));
    println!("measured: {what}: {} blocks, latest start {late:.1?} after its due time", report.blocks);
    assert!(late <= LATE_LIMIT, "{what}: a block started {late:?} late: some process() call waited");
    assert!(report.elapsed <= audio + LATE_LIMIT, "{what}: {:?} for {audio:?} of audio", report.elapsed);
}

// ---------------------------------------------------------------------------------------------
// The cue port taken at activation

#[test]
fn a_taken_cue_port_is_reported_timecode_flows_and_the_port_is_taken_once_free() {
    if !in_child("a_taken_cue_port_is_reported_timecode_flows_and_the_port_is_taken_once_free") {
        return;
    }
    let log = PluginLog::new();
    let holder = UdpSocket::bind("127.0.0.1:0").expect("a loopback socket");
    let listen = holder.local_addr().expect("its address");
    let (sr, block) = (48_000, 512);
    let cues = cues_settings(listen, json!({}));
    let mut rig = Rig::with(sr, rate("25"), block, 0, |p| p.update_settings(|s| set_cues(s, cues)));

    // The port is taken: the plugin says so, and timecode flows exactly, every block in time.
    rig.transport.play();
    let report = rig.plugin.run_realtime(&mut rig.transport, u64::from(sr), block);
    assert_eq!(report.passthrough_mismatches, 0);
    assert_blocks_in_time(&report, sr, "cue port taken");
    let line = log.wait_for(&["cue input: cannot listen on", &listen.to_string(), "retrying every second"]);
    println!("measured: the plugin's log says: {line}");
    let want = rig.expected();
    let got = messages(&receive(&rig.rx, want.len()));
    assert_stream(&got, &want, rig.timing.rate, "timecode while the cue port is taken");

    // Freed: the plugin binds within about a second and answers.
    drop(holder);
    let freed = Instant::now();
    let sender = CueSender::new(listen);
    let status = sender.wait_ready();
    let waited = freed.elapsed();
    println!("measured: the plugin answered /status {waited:.1?} after the port was freed");
    assert!(waited < Duration::from_secs(3), "bound {waited:?} after the port was freed");
    status.check().unwrap_or_else(|e| panic!("{e}"));
    assert!(status.get("bind_errors") >= 1, "the failed binds are counted: {status}");
    log.wait_for(&["cue input listening on", &listen.to_string()]);
    assert_eq!(log.count(&["cannot listen on"]), 1, "one line while it waited, not one a second");

    // Cues play, and timecode never stopped.
    let mut cr = CueRig { rig, listen, sender, block };
    let midi = cr.fire_ok("/cue/60", Some(CueValue::Int(90)), None);
    assert!(
        midi.iter().any(|m| m.offset == 0 && m.midi == Midi::NoteOn { channel: 0, key: 60, velocity: 90 }),
        "{midi:?}"
    );
    let before = cr.rig.expected().len();
    let report = cr.rig.plugin.run_realtime(&mut cr.rig.transport, u64::from(sr) / 2, block);
    assert_blocks_in_time(&report, sr, "cue port bound");
    let want = cr.rig.expected();
    let rest = messages(&receive(&cr.rig.rx, want.len() - before));
    let all: Vec<TimecodeMessage> = got.into_iter().chain(rest).collect();
    assert_stream(&all, &want, cr.rig.timing.rate, "timecode across the wait and the bind");
}

// ---------------------------------------------------------------------------------------------
// Targets the OS refuses

/// A target on a network this machine has no route to (a cable pulled, an interface down): the
/// OS refuses `sendto` at once (`ENETUNREACH`). The test runs in a network namespace of its own
/// where only loopback is up, so the target (198.51.100.7, a documentation address) is
/// unreachable there and nothing leaves the machine. A closed port is no error for the plugin's
/// unconnected socket (Linux reports ICMP "port unreachable" only to connected sockets or with
/// `IP_RECVERR`): those datagrams count as sent. (Port 0, which this test used before, is no
/// longer a target any settings reader takes.)
#[test]
#[cfg_attr(
    target_os = "linux",
    ignore = "needs a network namespace: root, unshare (util-linux), ip (apt-get install iproute2)"
)]
#[cfg_attr(not(target_os = "linux"), ignore = "network namespaces are Linux only")]
fn refused_targets_are_counted_and_the_other_targets_get_every_frame() {
    if !in_child_without_network("refused_targets_are_counted_and_the_other_targets_get_every_frame") {
        return;
    }
    let log = PluginLog::new();
    let (sr, block) = (48_000, 512);
    let good = Receiver::bind();
    let closed = free_loopback_addr();
    let unreachable: SocketAddr = (Ipv4Addr::new(198, 51, 100, 7), 5006).into();
    let targets = vec![unreachable, closed, good.addr()];
    let refusing = 1;
    let list = |t: &[SocketAddr]| json!(t.iter().map(ToString::to_string).collect::<Vec<_>>());
    let mut rig = Rig::with(sr, rate("25"), block, 0, |p| {
        p.update_settings(|s| {
            s.insert("targets".into(), list(&targets));
            // Not the default cue port, which other processes may hold.
            set_cues(s, cues_settings(free_loopback_addr(), json!({})));
        });
    });

    rig.transport.play();
    let report = rig.plugin.run_realtime(&mut rig.transport, u64::from(sr), block);
    assert_blocks_in_time(&report, sr, "refused targets");
    let first = rig.expected();
    let got = messages(&receive(&good, first.len()));
    assert_stream(&got, &first, rig.timing.rate, "the good target, after a refusing one in the list");
    let line = log.wait_for(&["could not send timecode to 198.51.100.7:5006: "]);
    println!("measured: the plugin's log says: {line}");

    // Mid-run, a preset (or the window) leaves one refusing target before the good one: the
    // network thread takes the new targets within 100 ms, and sending goes on.
    let second_targets = [unreachable, good.addr()];
    rig.plugin.update_settings(|s| {
        s.insert("targets".into(), list(&second_targets));
    });
    std::thread::sleep(Duration::from_millis(400));
    rig.transport.clear_history();
    rig.run(u64::from(sr), block);
    let second = expected(rig.transport.history(), rig.timing);
    let got_second = messages(&receive(&good, second.len()));
    assert_stream(&got_second, &second, rig.timing.rate, "the good target after the preset");
    assert_eq!(got_second[0].seq, got.last().map_or(0, |m| m.seq) + 1, "seq carries on");

    // The errors, counted: the network thread logs its totals when it stops. Every frame went
    // to every target: the refusing ones counted as errors, the closed port as sent.
    rig.plugin.deactivate();
    let stops = stop_lines(&log, 1);
    println!("measured: stop line {stops:?}");
    let n = |x: usize| x as u64;
    let sent = first.len() * (targets.len() - refusing) + second.len();
    let refused = first.len() * refusing + second.len();
    assert_eq!((stops[0]["sent"], stops[0]["send_errors"]), (n(sent), n(refused)), "{stops:?}");
    assert_eq!((stops[0]["bind_errors"], stops[0]["queue_full"]), (0, 0), "{stops:?}");
    // Logged at most once per 10 s, not once per frame.
    assert_eq!(log.count(&["could not send timecode to"]), 1, "{:#?}", log.lines());
    // Errors never change the settings.
    let settings = rig.plugin.nice_state().settings();
    assert_eq!(settings["targets"], list(&second_targets));
}

// ---------------------------------------------------------------------------------------------
// Two instances

#[test]
fn two_instances_send_two_complete_streams_and_the_second_waits_quietly_for_the_cue_port() {
    if !in_child("two_instances_send_two_complete_streams_and_the_second_waits_quietly_for_the_cue_port") {
        return;
    }
    let log = PluginLog::new();
    let (sr, block) = (48_000, 512);
    let rx = Receiver::bind();
    // The same cue port for both, as two instances with the default settings have.
    let listen = free_loopback_addr();
    let instance = || {
        let mut p = ClapPlugin::load();
        p.update_settings(|s| {
            s.insert("targets".into(), json!([rx.addr().to_string()]));
            s.insert("keepalive_ms".into(), json!(0));
            set_cues(s, cues_settings(listen, json!({})));
        });
        p.set_param(Param::Rate, rate("25").index() as f64);
        p
    };
    let mut one = instance();
    one.activate(sr, block);
    let sender = CueSender::new(listen);
    sender.wait_ready();
    let mut two = instance();
    two.activate(sr, block);
    let line = log.wait_for(&["cue input: cannot listen on", &listen.to_string()]);
    println!("measured: the second instance's log line: {line}");

    // Two tracks of one host: the second an hour further on, each block in turn.
    let (mut t1, mut t2) = (Transport::new(sr), Transport::new(sr));
    t2.locate(3600 * i64::from(sr));
    t1.play();
    t2.play();
    for _ in 0..8 {
        one.run(&mut t1, u64::from(sr) / 4, block);
        two.run(&mut t2, u64::from(sr) / 4, block);
    }
    let timing = Timing::new(sr, rate("25"));
    let (want1, want2) = (expected(t1.history(), timing), expected(t2.history(), timing));
    let packets = receive(&rx, want1.len() + want2.len());
    let mut streams: BTreeMap<SocketAddr, Vec<TimecodeMessage>> = BTreeMap::new();
    for p in &packets {
        streams.entry(p.from).or_default().push(p.msg());
    }
    assert_eq!(streams.len(), 2, "one stream per instance, told apart by source port: {:?}", streams.keys());
    let mut by_start: Vec<&Vec<TimecodeMessage>> = streams.values().collect();
    by_start.sort_by_key(|s| s[0].frame);
    assert_stream(by_start[0], &want1, timing.rate, "the first instance's stream");
    assert_stream(by_start[1], &want2, timing.rate, "the second instance's stream");
    assert!(by_start.iter().all(|s| s[0].seq == 0), "each instance counts its own sequence");

    // The first holds the cue port; the second waited quietly: one log line, no more.
    let status = sender.status();
    assert_eq!(status.get("bind_errors"), 0, "the first instance answers: {status}");
    assert_eq!(log.count(&["cannot listen on"]), 1, "{:#?}", log.lines());
    // The first goes away: the second takes the port within about a second and reports its
    // failed attempts.
    one.deactivate();
    drop(one);
    let gone = Instant::now();
    let status = sender.wait_ready();
    println!("measured: the second instance answered {:.1?} after the first went away: {status}", gone.elapsed());
    assert!(gone.elapsed() < Duration::from_secs(3));
    assert!(status.get("bind_errors") >= 1, "the second instance counted its failed binds: {status}");
    let mut cr = CueRig { rig: Rig { plugin: two, rx, transport: t2, timing }, listen, sender, block };
    let midi = cr.fire_ok("/cue/61", None, None);
    assert!(midi.iter().any(|m| m.midi == Midi::NoteOn { channel: 0, key: 61, velocity: 127 }), "{midi:?}");
    cr.rig.plugin.deactivate();
}

// ---------------------------------------------------------------------------------------------
// A flood: memory and time

#[test]
#[cfg_attr(not(target_os = "linux"), ignore = "reads /proc (Linux only)")]
fn a_flood_at_the_cue_port_keeps_every_block_in_time_and_memory_flat() {
    if !in_child("a_flood_at_the_cue_port_keeps_every_block_in_time_and_memory_flat") {
        return;
    }
    let (sr, block) = (48_000, 512);
    let mut cr = CueRig::new(sr, block, json!({}));
    cr.rig.transport.play();
    // Warm-up: threads, buffers and the allocator's arenas exist before the baseline.
    let warm_stop = AtomicBool::new(false);
    flood(cr.listen, 20_000, &warm_stop, 1);
    cr.rig.plugin.run_realtime(&mut cr.rig.transport, u64::from(sr) / 2, block);
    std::thread::sleep(Duration::from_millis(300));
    reset_hwm();
    let rss_before = rss_kib();

    let stop = Arc::new(AtomicBool::new(false));
    let flooder = {
        let (stop, target) = (stop.clone(), cr.listen);
        std::thread::spawn(move || flood(target, 1_000_000, &stop, 0xf100d))
    };
    let report = cr.rig.plugin.run_realtime(&mut cr.rig.transport, 4 * u64::from(sr), block);
    stop.store(true, Ordering::Relaxed);
    let sent = flooder.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
    let (rss_after, hwm_after) = (rss_kib(), hwm_kib());
    println!("measured: flood {sent:?}; VmRSS {rss_before} -> {rss_after} KiB, VmHWM {hwm_after} KiB");
    assert_blocks_in_time(&report, sr, "flood at the cue port");
    assert_eq!(report.passthrough_mismatches, 0);
    assert!(hwm_after <= rss_before + MEMORY_MARGIN_KIB, "peak {hwm_after} KiB, {rss_before} KiB before the flood");
    let want = cr.rig.expected();
    let got = messages(&receive(&cr.rig.rx, want.len()));
    assert_stream(&got, &want, cr.rig.timing.rate, "timecode through the flood");
    let status = settled_status(&cr.sender);
    status.check().unwrap_or_else(|e| panic!("after the flood: {e}"));
    println!("measured: counters after the flood: {status}");
}

// ---------------------------------------------------------------------------------------------
// Security

/// The token of the security test's cue input.
const TOKEN: &str = "s3cret";

/// Messages a hostile or confused sender might try, as `(address, arguments)`: control addresses
/// the plugin does not have, with plausible and absurd arguments, hostile patterns, huge strings
/// and blobs (each datagram stays under the 64 KiB a UDP datagram can carry).
fn hostile_messages(trap: SocketAddr) -> Vec<(String, Vec<OscType>)> {
    let s = |t: &str| OscType::String(t.to_owned());
    let huge = "A".repeat(60_000);
    let settings = json!({"targets": [trap.to_string()], "cues": {"listen": "0.0.0.0:5005", "allow": ["0.0.0.0/0"]}});
    let mut out: Vec<(String, Vec<OscType>)> = vec![
        ("/config/targets".into(), vec![s(&trap.to_string())]),
        ("/targets".into(), vec![s(&trap.to_string())]),
        ("/targets/add".into(), vec![s(&trap.to_string())]),
        ("/settings".into(), vec![s(&settings.to_string())]),
        ("/state".into(), vec![OscType::Blob(settings.to_string().into_bytes())]),
        ("/plugin/output".into(), vec![OscType::Int(0)]),
        ("/plugin/output".into(), vec![OscType::Float(0.0)]),
        ("/output".into(), vec![OscType::Bool(false)]),
        ("/rate".into(), vec![s("29.97df")]),
        ("/cues/listen".into(), vec![s("0.0.0.0:5005")]),
        ("/cues/allow".into(), vec![s("0.0.0.0/0")]),
        ("/sync/timecode".into(), vec![s("10:00:00:00"), OscType::Int(10), OscType::Long(1 << 40)]),
        ("/status".into(), vec![OscType::Int(1), s(&huge)]),
        ("/status".into(), vec![OscType::Blob(vec![0xff; 60_000])]),
        ("/cue/1".into(), vec![s(&huge)]),
        ("/cue/1".into(), vec![OscType::Blob(vec![0; 60_000])]),
        ("/trigger/1".into(), (0..2000).map(OscType::Int).collect()),
        ("/cue/*".into(), vec![OscType::Int(1)]),
        (format!("/{}", "*".repeat(5000)), vec![]),
        (format!("/cue/{}x", "*".repeat(2000)), vec![]),
        (format!("/{{{}}}", ["cue"; 4000].join(",")), vec![]),
        (format!("/{}", "x".repeat(60_000)), vec![]),
        ("/../../etc/passwd".into(), vec![s("/tmp/owned")]),
        ("/file/write".into(), vec![s("/tmp/osc-timecode-owned"), OscType::Blob(vec![1; 1000])]),
    ];
    out.push(("/log".into(), vec![s(&huge)]));
    out
}

/// Every hostile message as a datagram from a sender with `token` first (when given), plus a
/// 64-message bundle and an 8-deep bundle of them.
fn hostile_packets(trap: SocketAddr, token: Option<&str>) -> Vec<Vec<u8>> {
    let with_token = |args: &[OscType]| -> Vec<OscType> {
        token.map(|t| OscType::String(t.to_owned())).into_iter().chain(args.iter().cloned()).collect()
    };
    let msgs = hostile_messages(trap);
    let mut out: Vec<Vec<u8>> = msgs.iter().map(|(a, args)| encode(&message(a, with_token(args)))).collect();
    let small: Vec<&(String, Vec<OscType>)> =
        msgs.iter().filter(|(a, args)| encode(&message(a, args.clone())).len() < 512).collect();
    let many: Vec<OscPacket> =
        (0..64).map(|i| small[i % small.len()]).map(|(a, args)| message(a, with_token(args))).collect();
    out.push(encode(&bundle(IMMEDIATELY, many)));
    let (a, args) = small[0];
    out.push(encode(&nested(8, IMMEDIATELY, message(a, with_token(args)))));
    out.push(encode(&nested(9, IMMEDIATELY, message(a, with_token(args)))));
    out
}

/// Every file under `dir`, with its size and modification time.
fn files_under(dir: &Path) -> BTreeMap<PathBuf, (u64, Option<SystemTime>)> {
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.metadata() {
            Ok(m) if m.is_dir() => out.extend(files_under(&path)),
            Ok(m) => {
                out.insert(path, (m.len(), m.modified().ok()));
            }
            Err(_) => {}
        }
    }
    out
}

#[test]
#[cfg_attr(not(target_os = "linux"), ignore = "reads /proc (Linux only)")]
fn nothing_from_the_network_changes_settings_writes_files_or_grows_memory() {
    if !in_child("nothing_from_the_network_changes_settings_writes_files_or_grows_memory") {
        return;
    }
    let (sr, block) = (48_000, 512);
    let trap = Receiver::bind();
    let cues = json!({"allow": ["127.0.0.1/32"], "token": TOKEN});
    let mut cr = CueRig::new(sr, block, cues);
    // 127.0.0.2 is loopback, but outside the allow-list.
    let mut stranger = CueSender::from_ip(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), cr.listen);
    let friend_without_token = CueSender::new(cr.listen);
    let mut friend = CueSender::new(cr.listen).with_token(Some(TOKEN));

    // Where the plugin could write: its config file's directory, the home and config
    // directories (fresh and empty in this child).
    let config_file = PathBuf::from(std::env::var_os("OSC_TIMECODE_CONFIG").expect("the harness sets it"));
    let home = PathBuf::from(std::env::var_os("HOME").expect("HOME"));
    let xdg = PathBuf::from(std::env::var_os("XDG_CONFIG_HOME").expect("XDG_CONFIG_HOME"));
    let watched = [config_file.parent().expect("a directory").to_path_buf(), home.clone(), xdg.clone()];
    let files_before: Vec<_> = watched.iter().map(|d| files_under(d)).collect();
    let config_before = std::fs::read(&config_file).expect("the config file");
    let state_before = cr.rig.plugin.save_state();
    let settings_before = cr.rig.plugin.nice_state().settings();

    let packets = [
        hostile_packets(trap.addr(), Some(TOKEN)),
        hostile_packets(trap.addr(), None),
        hostile_packets(trap.addr(), Some("wrong")),
    ];
    let send_all = |rounds: usize| {
        for _ in 0..rounds {
            for p in packets.iter().flatten() {
                friend_without_token.send_raw(p);
                stranger.send_raw(p);
            }
        }
    };
    // Warm-up round, then the baseline, then many rounds while timecode plays.
    send_all(1);
    std::thread::sleep(Duration::from_millis(500));
    reset_hwm();
    let rss_before = rss_kib();
    let hostile_started = Instant::now();
    let sent_per_round = packets.iter().map(Vec::len).sum::<usize>() * 2;
    cr.rig.transport.play();
    let player = std::thread::scope(|s| {
        let sender = s.spawn(|| send_all(20));
        let report = cr.rig.plugin.run_realtime(&mut cr.rig.transport, 2 * u64::from(sr), block);
        sender.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        report
    });
    assert_blocks_in_time(&player, sr, "hostile packets at the cue port");
    println!("measured: {} hostile datagrams sent in {:.1?}", 21 * sent_per_round, hostile_started.elapsed());

    // Strangers got nothing back; the friend's hostile messages were refused, not applied.
    let strange: Vec<_> = stranger.replies_within(NO_REPLY_WINDOW);
    assert!(strange.is_empty(), "no reply to a sender outside the allow-list: {strange:?}");
    for p in &packets[0] {
        friend.send_raw(p);
    }
    let acks: Vec<_> = friend.replies_within(Duration::from_secs(2));
    assert!(!acks.is_empty(), "the friend's messages are acknowledged");
    for r in &acks {
        let status = r.message.args.last();
        assert!(
            r.message.addr == "/status" || status != Some(&OscType::String("ok".into())),
            "a hostile message was accepted: {r:?}"
        );
    }
    // Hostile patterns cost the cue thread bounded work (core's matcher has a step budget):
    // each is refused with an ack, one at a time, however long the pattern.
    for (address, _) in hostile_messages(trap.addr()).iter().filter(|(a, _)| a.contains(['*', '{'])) {
        let asked = Instant::now();
        friend.send_packet(&message(address, vec![OscType::String(TOKEN.into())]));
        let ack = friend.ack();
        let shown = if address.len() > 24 {
            format!("{}… ({} bytes)", &address[..24], address.len())
        } else {
            address.clone()
        };
        println!("measured: {shown} answered {} in {:.1?}", ack.status, asked.elapsed());
        assert_ne!(ack.status, "ok", "{address}");
    }
    // The cue input still works, and its counters add up. (The cue thread runs at the lowest
    // priority, so during the flood the kernel may have dropped many datagrams before it read
    // them: one more refused message of each kind, sent alone, must be counted.)
    friend_without_token.send_raw(&encode(&message("/cue/1", vec![])));
    stranger.send_raw(&encode(&message("/cue/1", vec![])));
    let midi = cr.fire_ok("/cue/62", Some(CueValue::Int(5)), None);
    assert!(midi.iter().any(|m| m.midi == Midi::NoteOn { channel: 0, key: 62, velocity: 5 }), "{midi:?}");
    let status = settled_status(&cr.sender);
    status.check().unwrap_or_else(|e| panic!("{e}"));
    println!("measured: counters after the hostile packets: {status}");
    assert!(status.get("dropped_not_allowed") >= 1 && status.get("dropped_bad_token") >= 1, "{status}");
    assert_eq!(status.get("applied"), 1, "only the friend's one real cue was applied: {status}");

    // Nothing changed: state (parameters and settings), targets, files.
    assert_eq!(cr.rig.plugin.save_state(), state_before, "the saved state is the same, byte for byte");
    assert_eq!(cr.rig.plugin.nice_state().settings(), settings_before);
    let want = cr.rig.expected();
    let got = messages(&receive(&cr.rig.rx, want.len()));
    assert_stream(&got, &want, cr.rig.timing.rate, "timecode to the configured target only");
    assert!(trap.collect_for(Duration::from_millis(300)).is_empty(), "nothing went to the address in the packets");
    assert_eq!(std::fs::read(&config_file).expect("the config file"), config_before, "the config file is unchanged");
    let files_after: Vec<_> = watched.iter().map(|d| files_under(d)).collect();
    assert_eq!(files_after, files_before, "no file written under {watched:?}");
    assert!(files_after[1].is_empty() && files_after[2].is_empty(), "home and config stay empty: {files_after:?}");
    assert!(!Path::new("/tmp/osc-timecode-owned").exists() && !Path::new("/tmp/owned").exists());

    // Memory: bounded whatever came in.
    let (rss_after, hwm_after) = (rss_kib(), hwm_kib());
    println!("measured: VmRSS {rss_before} -> {rss_after} KiB, VmHWM {hwm_after} KiB");
    assert!(hwm_after <= rss_before + MEMORY_MARGIN_KIB, "peak {hwm_after} KiB, {rss_before} KiB before");
}

// ---------------------------------------------------------------------------------------------
// A sample-rate change without re-activation
//
// CLAP has no such thing: the sample rate is an argument of `activate()`, so a host changes it by
// deactivating and activating again (the lifecycle tests cover that). VST3 passes it in
// `setupProcessing()`, which the spec allows only while the plugin is inactive; a host that calls
// it while processing breaks the contract. nice-plug accepts the call and stores the new rate,
// and the host's positions (`projectTimeSamples`) then count samples at the new rate: the plugin
// follows the transport's sample rate from the next block.

/// 48 kHz, then the host switches to 96 kHz without deactivating: the frames must still be the
/// host's timeline at 25 fps (the position in seconds is what counts, not in samples).
#[test]
fn vst3_a_sample_rate_change_without_reactivation_keeps_the_timeline() {
    use osc_timecode_tests::vst3host::Vst3Plugin;
    let rx = Receiver::bind();
    let mut plugin = Vst3Plugin::load();
    let mut state = osc_timecode_tests::state::NiceState::from_json_bytes(&plugin.get_state());
    state.edit_settings(|s| {
        s.insert("targets".into(), json!([rx.addr().to_string()]));
        s.insert("keepalive_ms".into(), json!(0));
    });
    state.set_param("rate", json!({"string": "25"}));
    plugin.set_state(&state.to_json_bytes());
    plugin.activate(48_000, 512);
    let mut before = Transport::playing_from(48_000, 0);
    plugin.run(&mut before, 48_000, 512);
    let result = plugin.setup_processing_while_active(96_000);
    println!("measured: setupProcessing(96 kHz) while active returned {result}");
    // The host carries on from the same moment, one second in, counting at 96 kHz.
    let mut after = Transport::playing_from(96_000, 96_000);
    plugin.run(&mut after, 96_000, 512);
    let got = messages(&receive(&rx, 50));
    let frames: Vec<i64> = got.iter().map(|m| m.frame).collect();
    assert_eq!(frames, (0..50).collect::<Vec<_>>(), "one second at 48 kHz, one at 96 kHz: frames 0 to 49");
}
