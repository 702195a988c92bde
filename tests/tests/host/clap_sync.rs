//! The plugin answers `/sync/ping` (issue 18) in the CLAP host: a receiver pings the address its
//! timecode comes from and gets a `/sync/pong` from that socket, on the timescale of the frames'
//! timetags; senders the plugin may not talk to get nothing, a flood is cut at the per-source
//! limit, and `/status` counts both. End to end: `osc-timecode listen --clock sync` against the
//! playing plugin gets synced.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use osc_timecode_core::FrameRate;
use osc_timecode_core::clocksync::{PACKET_LEN, Ping, Pong};
use osc_timecode_core::protocol::{TimecodeMessage, decode_timecode_packet, system_time_from_timetag};
use osc_timecode_core::timecode::frame_start_sample;
use osc_timecode_tests::bundle::client_binary;
use osc_timecode_tests::clap::{ClapPlugin, Param};
use osc_timecode_tests::cues::{CueSender, cues_settings, free_loopback_addr, set_cues};
use osc_timecode_tests::transport::Transport;
use serde_json::json;

const SAMPLE_RATE: u32 = 48_000;
const BLOCK: u32 = 512;
/// How long a frame's timetag is after its frame is processed (latency 0): one block.
const BLOCK_DURATION: Duration = Duration::from_nanos(BLOCK as u64 * 1_000_000_000 / SAMPLE_RATE as u64);
/// The loopback address the plugin's cue allow-list admits (so it gets pongs and `/status`).
const ALLOWED: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
/// A loopback address neither a target nor allowed.
const STRANGER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
/// Bounds every wait for a datagram that must come; never reached by a test that passes.
const PATIENCE: Duration = Duration::from_secs(5);
/// How long to listen for a pong that must not come.
const NO_REPLY_WINDOW: Duration = Duration::from_millis(300);

/// The plugin at 25 fps sending to `target` (keep-alive off), its cue input on a loopback port
/// of its own allowing only [`ALLOWED`]; activated. Returns it and the cue input's address.
fn plugin_sending_to(target: SocketAddr) -> (ClapPlugin, SocketAddr) {
    let listen = free_loopback_addr();
    let mut plugin = ClapPlugin::load();
    plugin.send_to(target, 0);
    plugin.set_param(Param::Rate, FrameRate::FPS_25.index() as f64);
    plugin.update_settings(|s| set_cues(s, cues_settings(listen, json!({ "allow": [ALLOWED.to_string()] }))));
    plugin.activate(SAMPLE_RATE, BLOCK);
    (plugin, listen)
}

/// One datagram the target socket got, in arrival order.
enum Got {
    /// A timecode frame and its timetag.
    Frame(TimecodeMessage, SystemTime),
    /// A pong and where it came from.
    Pong(Pong, usize, SocketAddr),
}

/// Reads one datagram from `socket` within [`PATIENCE`].
fn read(socket: &UdpSocket) -> Got {
    let mut buf = [0u8; 2048];
    let (n, from) = socket.recv_from(&mut buf).expect("a datagram from the plugin");
    if let Ok(pong) = Pong::decode(&buf[..n]) {
        return Got::Pong(pong, n, from);
    }
    match decode_timecode_packet(&buf[..n]) {
        Ok((Some(tag), m)) => Got::Frame(m, system_time_from_timetag(tag)),
        other => panic!("neither a pong nor a timetagged frame: {other:?}"),
    }
}

/// Sends `ping` from `socket` to `to` and reads until its pong comes; returns the pong, its
/// length and sender, and the frames read meanwhile.
fn ping(
    socket: &UdpSocket,
    to: SocketAddr,
    ping: Ping,
) -> ((Pong, usize, SocketAddr), Vec<(TimecodeMessage, SystemTime)>) {
    socket.send_to(&ping.encode(), to).unwrap();
    let deadline = Instant::now() + PATIENCE;
    let mut frames = Vec::new();
    loop {
        assert!(Instant::now() < deadline, "no pong to {ping:?} within {PATIENCE:?}");
        match read(socket) {
            Got::Frame(m, tag) => frames.push((m, tag)),
            Got::Pong(pong, n, from) if pong.id == ping.id => return ((pong, n, from), frames),
            Got::Pong(pong, ..) => panic!("a pong to another ping: {pong:?}"),
        }
    }
}

/// Pongs to `socket` within [`NO_REPLY_WINDOW`] (it hears nothing else).
fn pongs_within(socket: &UdpSocket, window: Duration) -> Vec<Pong> {
    let deadline = Instant::now() + window;
    let mut out = Vec::new();
    let mut buf = [0u8; 256];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        socket.set_read_timeout(Some(left.max(Duration::from_millis(1)))).unwrap();
        if let Ok((n, _)) = socket.recv_from(&mut buf) {
            out.push(Pong::decode(&buf[..n]).expect("only pongs come here"));
        }
    }
    out
}

/// The playing plugin answers its target's ping from the socket the timecode comes from, the
/// pong echoing ID and ORIGIN, as long as the ping, epoch 0, T2 <= T3, both within the frames'
/// timetags around it; a stranger gets nothing; 40 pings at once from an allowed sender get 20
/// pongs; `/status` counts the answered and the refused.
#[test]
fn the_plugin_answers_pings_on_its_timetags_timescale_to_whom_it_may() {
    let target = UdpSocket::bind("127.0.0.1:0").unwrap();
    target.set_read_timeout(Some(PATIENCE)).unwrap();
    let (mut plugin, listen) = plugin_sending_to(target.local_addr().unwrap());
    let mut transport = Transport::new(SAMPLE_RATE);
    transport.play();
    let pong_seen = AtomicBool::new(false);
    // The transport position of the first block started after the first pong arrived here.
    let mut after_pong: Option<i64> = None;
    let blocks = (3 * SAMPLE_RATE / BLOCK) as usize;
    let pinger = |pong_seen: &AtomicBool| {
        // The first frame says where the timecode comes from.
        let (source, first) = loop {
            let mut buf = [0u8; 2048];
            let (n, from) = target.recv_from(&mut buf).expect("timecode from the playing plugin");
            if let Ok((Some(tag), m)) = decode_timecode_packet(&buf[..n]) {
                break (from, (m, system_time_from_timetag(tag)));
            }
        };
        // The latest frame read before the ping goes: what waits after a few frames more.
        std::thread::sleep(Duration::from_millis(200));
        target.set_nonblocking(true).unwrap();
        let mut before = first;
        let mut buf = [0u8; 2048];
        while let Ok((n, _)) = target.recv_from(&mut buf) {
            if let Ok((Some(tag), m)) = decode_timecode_packet(&buf[..n]) {
                before = (m, system_time_from_timetag(tag));
            }
        }
        target.set_nonblocking(false).unwrap();
        let ((pong, len, from), _) = ping(&target, source, Ping { id: 1, origin: -77 });
        pong_seen.store(true, Ordering::Release);
        let mut answered = vec![(pong, len, from)];
        for id in 2..=3 {
            answered.push(ping(&target, source, Ping { id, origin: id * 1000 }).0);
        }
        // Frames after the first pong, for the upper bound (read while the run goes on).
        let mut later = Vec::new();
        while later.len() < 20 {
            match read(&target) {
                Got::Frame(m, tag) => later.push((m, tag)),
                Got::Pong(p, ..) => panic!("an unasked pong {p:?}"),
            }
        }
        let stranger = UdpSocket::bind((STRANGER, 0)).unwrap();
        stranger.send_to(&Ping { id: 9, origin: 9 }.encode(), source).unwrap();
        let to_stranger = pongs_within(&stranger, NO_REPLY_WINDOW);
        let flooder = UdpSocket::bind((ALLOWED, 0)).unwrap();
        for id in 100..140 {
            flooder.send_to(&Ping { id, origin: id }.encode(), source).unwrap();
        }
        let flood = pongs_within(&flooder, 2 * NO_REPLY_WINDOW);
        (source, before, answered, later, to_stranger, flood)
    };
    let (report, (source, before, answered, later, to_stranger, flood)) = std::thread::scope(|s| {
        let pinger = s.spawn(|| pinger(&pong_seen));
        let report = plugin.run_scripted_realtime(&mut transport, blocks, |t, _| {
            if after_pong.is_none() && pong_seen.load(Ordering::Acquire) {
                after_pong = Some(t.position);
            }
            BLOCK
        });
        (report, pinger.join().expect("the pinger"))
    });
    assert_eq!(report.passthrough_mismatches, 0);

    for (i, (pong, len, from)) in answered.iter().enumerate() {
        let id = i as i64 + 1;
        assert_eq!(*from, source, "pong {id} comes from the socket the timecode comes from");
        assert_eq!(*len, PACKET_LEN, "pong {id} is as long as its ping");
        assert_eq!((pong.id, pong.origin), (id, if id == 1 { -77 } else { id * 1000 }), "echoed");
        assert_eq!(pong.epoch, 0, "no step of the plugin's clock");
        let (t2, t3) = (system_time_from_timetag(pong.received), system_time_from_timetag(pong.sent));
        assert!(t2 <= t3, "pong {id}: T2 {t2:?} after T3 {t3:?}");
    }
    // The first pong within the timetags of the frames around it, on the same timescale: the
    // frame read before the ping was processed (its timetag less a block) before the ping was
    // sent; a frame of a block started after the pong arrived was processed after it was sent.
    let (t2, t3) = (system_time_from_timetag(answered[0].0.received), system_time_from_timetag(answered[0].0.sent));
    let (prev, prev_tag) = before;
    assert!(prev_tag <= t2 + BLOCK_DURATION, "T2 {t2:?} before frame {} was processed ({prev_tag:?})", prev.frame);
    let after_pong = after_pong.expect("a block started after the first pong");
    let (next, next_tag) = later
        .iter()
        .find(|(m, _)| frame_start_sample(m.frame, SAMPLE_RATE, FrameRate::FPS_25) >= after_pong)
        .copied()
        .expect("a frame of a block after the pong among those read");
    assert!(t3 + BLOCK_DURATION <= next_tag, "T3 {t3:?} after frame {} was processed ({next_tag:?})", next.frame);

    assert!(to_stranger.is_empty(), "127.0.0.2 is neither a target nor allowed: {to_stranger:?}");
    assert_eq!(flood.len(), 20, "40 pings at once from one allowed sender: 20 answered");
    assert!(flood.iter().all(|p| p.id == p.origin && (100..140).contains(&p.id)), "{flood:?}");

    let status = CueSender::from_ip(ALLOWED, listen).status();
    assert_eq!(status.get("sync_answered"), 3 + 20, "{status}");
    assert_eq!(status.get("sync_refused"), 1 + 20, "the stranger's and the flood's rest: {status}");
    status.check().unwrap_or_else(|e| panic!("{e}"));
    plugin.deactivate();
}

/// `osc-timecode listen --clock sync` against the playing plugin: its JSON says synced.
#[test]
fn listen_with_clock_sync_gets_synced_with_the_plugin() {
    let port = free_loopback_addr();
    let (mut plugin, _) = plugin_sending_to(port);
    let listen = Command::new(client_binary())
        .args(["listen", "--json", "--bind", &port.to_string(), "--duration", "5", "--clock", "sync"])
        .env("OSC_TIMECODE_CONFIG", "/nonexistent/osc-timecode-config.toml")
        .env_remove("OSC_TIMECODE_MASTER")
        .env_remove("OSC_TIMECODE_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run osc-timecode listen");
    let mut transport = Transport::new(SAMPLE_RATE);
    transport.play();
    // Play until listen ends (its duration), a little longer.
    plugin.run_realtime(&mut transport, u64::from(SAMPLE_RATE) * 6, BLOCK);
    let out = listen.wait_with_output().expect("listen ends after its duration");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<serde_json::Value> =
        stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    assert!(lines.iter().any(|v| v["state"] == "locked"), "{stdout}");
    let synced = lines
        .iter()
        .rev()
        .find(|v| v["sync"] == "synced")
        .unwrap_or_else(|| panic!("never synced:\n{stdout}\n{stderr}"));
    assert!(synced["sync_bound_ms"].as_f64().is_some_and(|b| b >= 0.0), "{synced}");
    assert!(stderr.contains("clock: synced with"), "{stderr}");
    plugin.deactivate();
}
