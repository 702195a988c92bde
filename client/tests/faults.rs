//! Faults around `osc-timecode listen` and `serve`, through the real binaries on loopback: a
//! port another program holds (`--wait-for-port`), two masters sending to one `listen`, and a
//! flood of valid and invalid datagrams at `listen` while `serve` plays.
//!
//! Every process runs behind a guard that kills it on drop. No assertion is about speed (house
//! rule): the timeouts only bound tests that fail, and the "within ~2 s" ones are liveness
//! (the commands retry a taken port every second).

mod util;

use std::net::{SocketAddr, UdpSocket};
use std::process::ExitStatus;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use osc_timecode_core::FrameRate;
use osc_timecode_core::cue::status_from_osc;
use osc_timecode_core::protocol::{TimecodeMessage, encode_timecode_bundle, timetag_from_system_time};
use rosc::{OscBundle, OscMessage, OscPacket, OscTime, OscType};
use serde_json::Value;
use util::{KillOnDrop, Streams, free_port, osc_timecode, proc_status_kib, udp_drops};

/// Bounds every wait of a test that fails; never reached by one that passes.
const PATIENCE: Duration = Duration::from_secs(10);
/// Frame 01:00:00:00 at 25 fps: where master A starts.
const A_START: i64 = 90_000;
/// Frame 10:00:00:00 at 25 fps: where master B starts, far from anything A plays in a test.
const B_START: i64 = 900_000;

/// A running `listen --json`.
struct Listen {
    /// The process.
    child: KillOnDrop,
    /// Its output.
    streams: Streams,
    /// Every JSON object it printed so far, in order.
    seen: Vec<Value>,
}

impl Listen {
    /// `listen --json --bind 127.0.0.1:PORT EXTRA` in a scratch directory named `test`.
    fn spawn(test: &str, port: u16, extra: &[&str]) -> Self {
        Self::spawn_with_config(test, None, port, extra)
    }

    /// [`Listen::spawn`] with `config` as its config file.
    fn spawn_with_config(test: &str, config: Option<&str>, port: u16, extra: &[&str]) -> Self {
        let mut cmd = osc_timecode(test);
        if let Some(config) = config {
            cmd.write_config(config);
        }
        let mut child =
            KillOnDrop(cmd.args(["listen", "--json", "--bind", &format!("127.0.0.1:{port}")]).args(extra).spawn());
        let streams = Streams::take(&mut child.0);
        Self { child, streams, seen: Vec::new() }
    }

    /// Like [`Listen::spawn`], and waits until the port is bound.
    fn bound(test: &str, port: u16, extra: &[&str]) -> Self {
        Self::bound_with_config(test, None, port, extra)
    }

    /// Like [`Listen::spawn_with_config`], and waits until the port is bound.
    fn bound_with_config(test: &str, config: Option<&str>, port: u16, extra: &[&str]) -> Self {
        let listen = Self::spawn_with_config(test, config, port, extra);
        let deadline = Instant::now() + PATIENCE;
        while UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            assert!(Instant::now() < deadline, "listen never bound {port}; stderr:\n{}", listen.streams.stderr());
            std::thread::sleep(Duration::from_millis(10));
        }
        listen
    }

    /// Reads objects until one satisfies `pred` (kept in [`Listen::seen`] with the others).
    fn until(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.streams.stdout.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "listen: no object for {what} within {PATIENCE:?}; last {:?}; stderr:\n{}",
                    self.seen.last(),
                    self.streams.stderr()
                )
            });
            let obj: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            self.seen.push(obj.clone());
            if pred(&obj) {
                return obj;
            }
        }
    }

    /// Sends SIGINT (Ctrl-C) and returns the exit status.
    fn interrupt(mut self) -> (ExitStatus, String) {
        let status = interrupt(&mut self.child);
        // The stderr reader ends with the process.
        std::thread::sleep(Duration::from_millis(50));
        (status, self.streams.stderr())
    }
}

/// SIGINT, as Ctrl-C sends it, then the exit status (within [`PATIENCE`]). Through `kill`, so
/// Unix only: the tests that call it are ignored on Windows (no `kill`, and Ctrl-C there goes to
/// a whole console, not to one process).
fn interrupt(child: &mut KillOnDrop) -> ExitStatus {
    let pid = child.0.id().to_string();
    assert!(std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "still running {PATIENCE:?} after SIGINT");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A running `serve` sending to `127.0.0.1:port`.
struct Serve {
    /// The process (killed on drop).
    _child: KillOnDrop,
    /// Where it listens for transport control and `/status`.
    control: SocketAddr,
    /// Its output (kept so the pipes stay drained).
    _streams: Streams,
}

impl Serve {
    /// `serve --to 127.0.0.1:PORT --listen 127.0.0.1:0 --start START ARGS`; waits for its startup line.
    fn start(test: &str, port: u16, start: &str, args: &[&str]) -> Self {
        let mut child = KillOnDrop(
            osc_timecode(test)
                .args(["serve", "--to", &format!("127.0.0.1:{port}"), "--listen", "127.0.0.1:0", "--start", start])
                .args(args)
                .spawn(),
        );
        let streams = Streams::take(&mut child.0);
        let startup = streams.stderr_line(PATIENCE, "serve's startup line");
        // "... cues and transport on 127.0.0.1:PORT; Ctrl-C ends"
        let control = startup
            .split(" on ")
            .nth(1)
            .and_then(|rest| rest.split([';', ' ']).next())
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("no listen address in serve's startup line {startup:?}"));
        Self { _child: child, control, _streams: streams }
    }

    /// Sends `address` (no arguments) and returns the reply.
    fn request(&self, address: &str) -> OscMessage {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(PATIENCE)).unwrap();
        let msg = OscPacket::Message(OscMessage { addr: address.to_owned(), args: vec![] });
        socket.send_to(&rosc::encoder::encode(&msg).unwrap(), self.control).unwrap();
        let mut buf = [0u8; 4096];
        let n = socket.recv(&mut buf).unwrap_or_else(|e| panic!("no reply from serve to {address}: {e}"));
        match rosc::decoder::decode_udp(&buf[..n]).expect("a valid reply").1 {
            OscPacket::Message(m) => m,
            OscPacket::Bundle(b) => panic!("replies are bare messages, got {b:?}"),
        }
    }

    /// `/status` counter `name`.
    fn counter(&self, name: &str) -> u64 {
        let reply = self.request("/status");
        let status = status_from_osc(&reply).unwrap_or_else(|| panic!("not a /status reply: {reply:?}"));
        status.iter().find(|(n, _)| n == name).map(|(_, v)| *v).unwrap_or_else(|| panic!("no {name} in {status:?}"))
    }
}

fn state(o: &Value) -> &str {
    o["state"].as_str().unwrap_or_default()
}

fn frame(o: &Value) -> i64 {
    o["frame"].as_i64().unwrap_or(i64::MIN)
}

fn counter(o: &Value, name: &str) -> u64 {
    o[name].as_u64().unwrap_or_else(|| panic!("no counter {name} in {o}"))
}

/// Frames a test may see from a master that started at `start`: the first two minutes.
fn near(start: i64) -> std::ops::Range<i64> {
    start..start + 25 * 120
}

#[test]
#[cfg_attr(windows, ignore = "ends the command with SIGINT through kill (Unix only)")]
fn listen_waits_for_a_taken_port_with_wait_for_port_then_locks_onto_serve() {
    let held = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let mut listen = Listen::spawn("faults_listen_wait", port, &["--wait-for-port", "--duration", "60"]);
    let line = listen.streams.stderr_line(PATIENCE, "the waiting line");
    assert_eq!(line, format!("osc-timecode: 127.0.0.1:{port} is in use; retrying every second"));
    // Still there, waiting, after a few retries; nothing on standard output yet.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(listen.child.0.try_wait().unwrap().is_none(), "listen gave up: {}", listen.streams.stderr());
    assert!(listen.streams.stdout.try_recv().is_err(), "nothing shown before it listens");
    let _serve = Serve::start("faults_listen_wait_master", port, "01:00:00:00", &[]);
    drop(held);
    let freed = Instant::now();
    let line = listen.streams.stderr_line(Duration::from_secs(5), "the line saying it listens");
    assert_eq!(line, format!("osc-timecode: 127.0.0.1:{port} is free now; listening"));
    // Liveness, not speed: one retry a second.
    assert!(freed.elapsed() < Duration::from_secs(3), "bound {:?} after the port was freed", freed.elapsed());
    let locked = listen.until("locked onto serve", |o| state(o) == "locked");
    assert!(near(A_START).contains(&frame(&locked)), "{locked}");
    let (status, stderr) = listen.interrupt();
    assert_eq!(status.code(), Some(0), "Ctrl-C ends it cleanly; stderr:\n{stderr}");
    assert_eq!(stderr.lines().count(), 2, "the waiting line and the listening line only:\n{stderr}");
}

#[test]
#[cfg_attr(windows, ignore = "ends the command with SIGINT through kill (Unix only)")]
fn with_two_masters_listen_follows_the_first_reports_the_other_once_and_takes_it_when_the_first_stops() {
    let port = free_port();
    let mut listen = Listen::bound("faults_two_masters", port, &["--duration", "60"]);
    let a = Serve::start("faults_two_masters_a", port, "01:00:00:00", &[]);
    let locked = listen.until("locked onto A", |o| state(o) == "locked");
    assert!(near(A_START).contains(&frame(&locked)), "{locked}");
    let master_a = locked["master"].as_str().expect("the master's address").to_owned();
    let b = Serve::start("faults_two_masters_b", port, "10:00:00:00", &[]);
    let warning = listen.streams.stderr_line(PATIENCE, "the line about the second master");
    let prefix = "osc-timecode: ignoring timecode from ";
    let suffix = format!(": following {master_a}, the master heard first (one master at a time)");
    let master_b = warning
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_suffix(&suffix))
        .unwrap_or_else(|| panic!("{warning:?}"))
        .to_owned();
    assert_ne!(master_b, master_a);
    // Two seconds of both: A's timeline only, frame by frame, B counted as ignored.
    let from = listen.seen.len();
    let until = Instant::now() + Duration::from_secs(2);
    let last = listen.until("two seconds of both masters", |_| Instant::now() >= until);
    let both = &listen.seen[from..];
    assert!(both.len() >= 25, "{both:?}");
    for w in both.windows(2) {
        assert!(matches!(state(&w[1]), "locked" | "freewheel"), "{w:?}");
        assert_eq!(w[1]["master"].as_str(), Some(master_a.as_str()), "{w:?}");
        assert!(near(A_START).contains(&frame(&w[1])) && frame(&w[1]) > frame(&w[0]), "A's frames in order: {w:?}");
    }
    assert!(counter(&last, "ignored") >= 25, "B's packets are counted: {last}");
    // A stops: listen lets it go once it is lost and follows B.
    drop(a);
    let line = listen.streams.stderr_line(PATIENCE, "the line about the change of master");
    assert_eq!(line, format!("osc-timecode: following {master_b} now: {master_a} went silent"));
    let on_b = listen.until("locked onto B", |o| state(o) == "locked" && o["master"] == master_b.as_str());
    assert!(near(B_START).contains(&frame(&on_b)), "{on_b}");
    drop(b);
    let (status, stderr) = listen.interrupt();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(stderr.lines().count(), 2, "one line about B, one about the change:\n{stderr}");
}

/// A seeded SplitMix64, for the flood's garbage.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Datagrams that are not timecode: other addresses, `/sync/timecode` with wrong arguments, a
/// bundle nested too deep for the decoder, a large message.
fn not_timecode() -> Vec<Vec<u8>> {
    let message = |addr: &str, args: Vec<OscType>| OscPacket::Message(OscMessage { addr: addr.to_owned(), args });
    let mut nested = message("/sync/timecode", vec![]);
    for _ in 0..20 {
        nested = OscPacket::Bundle(OscBundle { timetag: OscTime { seconds: 0, fractional: 1 }, content: vec![nested] });
    }
    let packets = [
        message("/cue/1", vec![OscType::Int(100)]),
        message("/status", vec![]),
        message("/transport/stop", vec![]),
        message("/sync/timecode", vec![OscType::Int(1)]),
        message("/sync/timecode", vec![OscType::String("01:00:00:00".into())]),
        message("/sync/timecodes", vec![]),
        message("/x", vec![OscType::String("y".repeat(1400))]),
        message("/x", vec![OscType::Blob(vec![0xab; 1400])]),
        nested,
    ];
    packets.iter().map(|p| rosc::encoder::encode(p).unwrap()).collect()
}

/// What one flood thread sent.
#[derive(Debug, Default, Clone, Copy)]
struct Sent {
    /// Datagrams the kernel took.
    ok: u64,
    /// Sends it refused.
    refused: u64,
}

/// Sends `burst` datagrams from `next` to `127.0.0.1:port` every 5 ms until `stop`; returns the
/// socket's address and what it sent.
fn flood(
    port: u16,
    burst: u32,
    stop: Arc<AtomicBool>,
    mut next: impl FnMut(u64) -> Vec<u8> + Send + 'static,
) -> (SocketAddr, std::thread::JoinHandle<Sent>) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    let thread = std::thread::spawn(move || {
        let mut sent = Sent::default();
        let mut i = 0;
        while !stop.load(Ordering::Relaxed) {
            for _ in 0..burst {
                match socket.send_to(&next(i), ("127.0.0.1", port)) {
                    Ok(_) => sent.ok += 1,
                    Err(_) => sent.refused += 1,
                }
                i += 1;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        sent
    });
    (addr, thread)
}

#[test]
#[cfg_attr(not(target_os = "linux"), ignore = "reads /proc (Linux only)")]
fn a_flood_at_listen_while_serve_plays_leaves_it_on_its_master_with_every_datagram_counted() {
    let port = free_port();
    let mut listen = Listen::bound("faults_listen_flood", port, &["--duration", "120"]);
    let pid = listen.child.0.id();
    // No keep-alive: once parked, serve is silent, so its count is final.
    let serve = Serve::start("faults_listen_flood_master", port, "01:00:00:00", &["--keepalive-ms", "0"]);
    let locked = listen.until("locked onto serve", |o| state(o) == "locked");
    let master = locked["master"].as_str().expect("a master").to_owned();
    let from = listen.seen.len() - 1;
    let (rss_before, hwm_before) = (proc_status_kib(pid, "VmRSS"), proc_status_kib(pid, "VmHWM"));

    let stop = Arc::new(AtomicBool::new(false));
    // A second master's valid timecode, another timeline, as fast as the bursts go.
    let (b_addr, b) = flood(port, 20, stop.clone(), |i| {
        let msg = TimecodeMessage::new(B_START + i as i64, FrameRate::FPS_25, true, i as i64, i == 0, false);
        let mut bytes = Vec::new();
        encode_timecode_bundle(&msg, timetag_from_system_time(SystemTime::now()), &mut bytes);
        bytes
    });
    let mut rng = Rng(0x5eed);
    let (_, garbage) = flood(port, 15, stop.clone(), move |_| {
        let len = 1 + (rng.next() % 96) as usize;
        (0..len).map(|_| rng.next() as u8).collect()
    });
    let others = not_timecode();
    let (_, other) = flood(port, 15, stop.clone(), move |i| others[i as usize % others.len()].clone());
    let until = Instant::now() + Duration::from_secs(3);
    listen.until("three seconds of flood", |_| Instant::now() >= until);
    stop.store(true, Ordering::Relaxed);
    let (b, garbage, other) = (b.join().unwrap(), garbage.join().unwrap(), other.join().unwrap());
    eprintln!("[flood] second master {b:?}, garbage {garbage:?}, other addresses {other:?}");

    // Park serve: its parked frame is the last datagram listen gets, after the whole flood.
    std::thread::sleep(Duration::from_millis(200));
    let ack = serve.request("/transport/stop");
    assert_eq!(ack.args.last(), Some(&OscType::String("ok".into())), "{ack:?}");
    let last = listen.until("the parked frame", |o| state(o) == "stopped");
    let serve_sent = serve.counter("timecode_sent");
    let drops = udp_drops(port).expect("listen's socket in /proc/net/udp");
    let (rss_after, hwm_after) = (proc_status_kib(pid, "VmRSS"), proc_status_kib(pid, "VmHWM"));
    eprintln!(
        "[flood] listen: {last}; serve sent {serve_sent}; kernel drops {drops}; VmRSS {rss_before} -> {rss_after} \
         KiB, VmHWM {hwm_before} -> {hwm_after} KiB"
    );

    // On its master throughout: A's timeline frame by frame (locked, or freewheeling over a
    // packet the kernel dropped), never B's.
    let during = &listen.seen[from..listen.seen.len() - 1];
    for w in during.windows(2) {
        assert!(matches!(state(&w[1]), "locked" | "freewheel"), "{w:?}");
        assert_eq!(w[1]["master"].as_str(), Some(master.as_str()), "{w:?}");
        assert!(near(A_START).contains(&frame(&w[1])) && frame(&w[1]) > frame(&w[0]), "{w:?}");
    }
    assert!(near(A_START).contains(&frame(&last)), "{last}");
    // Every datagram counted once: used, stale, ignored (B), invalid, or dropped by the kernel.
    let (received, stale, ignored, invalid) =
        (counter(&last, "received"), counter(&last, "stale"), counter(&last, "ignored"), counter(&last, "invalid"));
    let flooded = b.ok + garbage.ok + other.ok;
    assert_eq!(received + stale + ignored + invalid + drops, serve_sent + flooded, "{last}; drops {drops}");
    assert!(ignored <= b.ok && ignored + drops >= b.ok, "B: ignored {ignored}, sent {}", b.ok);
    assert!(invalid <= garbage.ok + other.ok && invalid + drops >= garbage.ok + other.ok, "invalid {invalid}");
    assert!(received + stale <= serve_sent && received + stale + drops >= serve_sent, "{last}");
    assert!(ignored > 1000 && invalid > 1000, "the flood arrived: {last}");
    // Memory: bounded, not growing with the flood (a generous margin for the allocator).
    assert!(hwm_after <= rss_before + 8 * 1024, "VmHWM {hwm_after} KiB after the flood, VmRSS {rss_before} KiB before");

    let (status, stderr) = listen.interrupt();
    assert_eq!(status.code(), Some(0), "{stderr}");
    // One line about B; none about the datagrams that are not timecode.
    assert_eq!(
        stderr.lines().collect::<Vec<_>>(),
        [format!(
            "osc-timecode: ignoring timecode from {b_addr}: following {master}, the master heard first (one master at a time)"
        )],
    );
}

/// Pads `bytes` with NULs to a multiple of 4, after at least one (an OSC string's end).
fn nul_padded(mut bytes: Vec<u8>) -> Vec<u8> {
    bytes.push(0);
    while !bytes.len().is_multiple_of(4) {
        bytes.push(0);
    }
    bytes
}

/// `ADDRESS [TOKEN] [[[…]]]`: OSC arrays nested `depth` deep, written by hand as a hostile
/// sender would (rosc's encoder recurses). About 2 bytes a level: 4000 levels are 8 KB.
fn array_packet(address: &str, token: Option<&str>, depth: usize) -> Vec<u8> {
    let mut bytes = nul_padded(address.as_bytes().to_vec());
    let mut tags = b",".to_vec();
    if token.is_some() {
        tags.push(b's');
    }
    tags.extend(std::iter::repeat_n(b'[', depth));
    tags.extend(std::iter::repeat_n(b']', depth));
    bytes.extend(nul_padded(tags));
    if let Some(token) = token {
        bytes.extend(nul_padded(token.as_bytes().to_vec()));
    }
    bytes
}

/// `inner` wrapped in `levels` bundles (timetag "immediately"), 20 bytes a level.
fn in_bundles(inner: &[u8], levels: usize) -> Vec<u8> {
    let mut bytes = inner.to_vec();
    for _ in 0..levels {
        let mut outer = b"#bundle\0\0\0\0\0\0\0\0\x01".to_vec();
        outer.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        outer.extend_from_slice(&bytes);
        bytes = outer;
    }
    bytes
}

/// The hostile packets of issue 14 aimed at a port that reads timecode (`listen`, `cue --at`):
/// arrays nested 4000, 6000, 16000 and 32000 deep (8 to 64 KB), bare and in a bundle, and a
/// `/sync/timecode` message 3000 bundles deep (60 KB; it overflowed `listen`'s stack).
fn hostile_timecode_packets() -> Vec<Vec<u8>> {
    let mut packets = Vec::new();
    for depth in [4000, 6000, 16_000, 32_000] {
        let bare = array_packet("/sync/timecode", None, depth);
        packets.push(in_bundles(&bare, 1));
        packets.push(bare);
    }
    packets.push(in_bundles(&array_packet("/sync/timecode", None, 0), 3000));
    packets
}

/// A socket asking `serve` with `token`; replies read with a timeout.
fn control_socket() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(PATIENCE)).unwrap();
    socket
}

/// Reads one reply as a message.
fn read_reply(socket: &UdpSocket) -> OscMessage {
    let mut buf = vec![0u8; 65_536];
    let n = socket.recv(&mut buf).unwrap_or_else(|e| panic!("no reply from serve: {e}"));
    match rosc::decoder::decode_udp(&buf[..n]).expect("a valid reply").1 {
        OscPacket::Message(m) => m,
        OscPacket::Bundle(b) => panic!("replies are bare messages, got {} elements", b.content.len()),
    }
}

/// `/status [TOKEN]` from `socket`, asked again every 600 ms until answered (answers to one
/// sender are at most one per 500 ms); the counters by name.
fn status_of(socket: &UdpSocket, to: SocketAddr, token: Option<&str>) -> Vec<(String, u64)> {
    let args = token.map(|t| vec![OscType::String(t.to_owned())]).unwrap_or_default();
    let query = rosc::encoder::encode(&OscPacket::Message(OscMessage { addr: "/status".into(), args })).unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(600))).unwrap();
    let deadline = Instant::now() + PATIENCE;
    let mut buf = vec![0u8; 65_536];
    let status = loop {
        assert!(Instant::now() < deadline, "no /status answer within {PATIENCE:?}");
        socket.send_to(&query, to).unwrap();
        let Ok(n) = socket.recv(&mut buf) else { continue };
        if let Ok((_, OscPacket::Message(m))) = rosc::decoder::decode_udp(&buf[..n])
            && let Some(status) = status_from_osc(&m)
        {
            break status;
        }
    };
    socket.set_read_timeout(Some(PATIENCE)).unwrap();
    status
}

fn named(status: &[(String, u64)], name: &str) -> u64 {
    status.iter().find(|(n, _)| n == name).map(|(_, v)| *v).unwrap_or_else(|| panic!("no {name} in {status:?}"))
}

/// `received` = `acked` + every `dropped_*` + `status_answered` + `status_refused`.
fn assert_adds_up(status: &[(String, u64)]) {
    let dropped: u64 = status.iter().filter(|(n, _)| n.starts_with("dropped_")).map(|(_, v)| v).sum();
    let queries = named(status, "status_answered") + named(status, "status_refused");
    assert_eq!(named(status, "received"), named(status, "acked") + dropped + queries, "{status:?}");
}

/// Regression (issue 14): `serve` died of a stack overflow on one ~32 KB `/cue/1 ,[[[[…]]]]`
/// datagram. Arrays 8, 12 and 32 KB deep (bare, in a bundle, after the right token, without
/// it) and a cue 3000 bundles deep: each is counted as malformed, serve goes on sending
/// timecode, and a real cue right after each one is acknowledged.
#[test]
fn serve_survives_array_packets_and_deep_bundles_and_acks_the_next_cue() {
    for token in [None, Some("s3cret")] {
        let port = free_port();
        let rx = UdpSocket::bind(("127.0.0.1", port)).unwrap();
        rx.set_read_timeout(Some(PATIENCE)).unwrap();
        let extra: &[&str] = if token.is_some() { &["--token", "s3cret", "--quiet"] } else { &["--quiet"] };
        let mut serve = Serve::start("faults_serve_arrays", port, "01:00:00:00", extra);
        let socket = control_socket();
        let mut hostile = Vec::new();
        for depth in [4000, 6000, 16_000] {
            for with_token in [None, token].into_iter().collect::<std::collections::BTreeSet<_>>() {
                let bare = array_packet("/cue/1", with_token, depth);
                hostile.push(in_bundles(&bare, 1));
                hostile.push(bare);
            }
        }
        hostile.push(in_bundles(&rosc::encoder::encode(&OscPacket::Message(cue_message(token, 0))).unwrap(), 3000));
        for (i, packet) in hostile.iter().enumerate() {
            socket.send_to(packet, serve.control).unwrap();
            let id = i as i64 + 1;
            let cue = rosc::encoder::encode(&OscPacket::Message(cue_message(token, id))).unwrap();
            socket.send_to(&cue, serve.control).unwrap();
            let ack = read_reply(&socket);
            assert_eq!(
                ack.args,
                [OscType::String("/cue/1".into()), OscType::Long(id), OscType::String("ok".into())],
                "the cue after hostile packet {i} ({} bytes), token {token:?}",
                packet.len()
            );
        }
        assert!(serve._child.0.try_wait().unwrap().is_none(), "serve is alive");
        let mut buf = [0u8; 2048];
        let n = rx.recv(&mut buf).expect("timecode still flows");
        osc_timecode_core::protocol::decode_timecode_packet(&buf[..n]).expect("valid timecode");
        let status = status_of(&socket, serve.control, token);
        assert_adds_up(&status);
        assert_eq!(named(&status, "dropped_malformed"), hostile.len() as u64, "{status:?}");
        assert_eq!(named(&status, "acked"), hostile.len() as u64, "{status:?}");
        serve._child.0.kill().unwrap();
    }
}

/// `/cue/1 [TOKEN] ID` as an int64 ID.
fn cue_message(token: Option<&str>, id: i64) -> OscMessage {
    let mut args: Vec<OscType> = token.map(|t| vec![OscType::String(t.to_owned())]).unwrap_or_default();
    args.extend([OscType::Nil, OscType::Long(id)]);
    OscMessage { addr: "/cue/1".into(), args }
}

/// Regression (issue 14): deep bundles reached `listen` through `decode_timecode_packet`, and
/// 3000 levels overflowed its stack. While it follows serve, the hostile packets arrive at its
/// port: it stays on its master, frame by frame, and counts each of them as invalid.
#[test]
#[cfg_attr(not(target_os = "linux"), ignore = "reads /proc (Linux only)")]
fn listen_survives_array_packets_and_deep_bundles_on_its_port_and_keeps_its_master() {
    let port = free_port();
    let mut listen = Listen::bound("faults_listen_hostile", port, &["--duration", "60"]);
    let _serve = Serve::start("faults_listen_hostile_master", port, "01:00:00:00", &[]);
    let locked = listen.until("locked onto serve", |o| state(o) == "locked");
    let master = locked["master"].as_str().expect("a master").to_owned();
    let from = listen.seen.len() - 1;
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let packets = hostile_timecode_packets();
    for _ in 0..3 {
        for packet in &packets {
            socket.send_to(packet, ("127.0.0.1", port)).unwrap();
            // Paced: 64 KB datagrams fill a receive buffer in a few packets (drops are
            // counted below, but a test that sees its packets is a better test).
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let sent = 3 * packets.len() as u64;
    let drops = || udp_drops(port).expect("listen's socket in /proc/net/udp");
    let last = listen.until("every hostile packet counted", |o| counter(o, "invalid") + drops() >= sent);
    let after = listen.until("ten more frames", |o| frame(o) >= frame(&last) + 10);
    assert_eq!(counter(&after, "invalid") + drops(), sent, "{after}; kernel drops {}", drops());
    assert!(counter(&after, "invalid") > 0, "{after}");
    for w in listen.seen[from..].windows(2) {
        assert!(matches!(state(&w[1]), "locked" | "freewheel"), "{w:?}");
        assert_eq!(w[1]["master"].as_str(), Some(master.as_str()), "{w:?}");
        assert!(frame(&w[1]) > frame(&w[0]), "frames in order: {w:?}");
    }
    let (status, stderr) = listen.interrupt();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "nothing to say about packets that are not timecode: {stderr}");
}

/// The same packets at the port `cue --at` reads the master's timecode on, all the while it
/// locks: it locks anyway and the cue is acknowledged for the label asked.
#[test]
fn cue_at_locks_through_array_packets_and_deep_bundles() {
    let port = free_port();
    let serve = Serve::start("faults_cue_at_hostile_master", port, "01:00:00:00", &["--quiet"]);
    let stop = Arc::new(AtomicBool::new(false));
    let packets = hostile_timecode_packets();
    let (_, hostile) = flood(port, 1, stop.clone(), move |i| packets[i as usize % packets.len()].clone());
    let out = osc_timecode("faults_cue_at_hostile")
        .args(["cue", "5", "--at", "01:00:30:00", "--timecode-from", &format!("127.0.0.1:{port}")])
        .args(["--master", &serve.control.to_string()])
        .stdout();
    stop.store(true, Ordering::Relaxed);
    let sent = hostile.join().unwrap();
    assert!(out.starts_with("ok /cue/5 id ") && out.ends_with(" at 01:00:30:00\n"), "{out}");
    assert!(sent.ok > 0, "hostile packets were sent: {sent:?}");
}

/// Regression (issue 14): `/status` answered every query, 536 bytes for 12, 64 answers for one
/// bundle of 64 queries, without a count. Now one bundle of 64 queries gets at most one answer,
/// and a flood of queries gets at most what it sent plus the documented allowance
/// (`osc_timecode_core::reply`), every query counted as answered or refused.
#[test]
#[cfg_attr(not(target_os = "linux"), ignore = "reads /proc (Linux only)")]
fn status_floods_get_bounded_answers_and_every_query_is_counted() {
    use osc_timecode_core::reply::{SOURCE_ALLOWANCE, SOURCE_TRICKLE, UDP_OVERHEAD};
    let serve = Serve::start("faults_status_flood", free_port(), "01:00:00:00", &["--quiet"]);
    let socket = control_socket();
    let started = Instant::now();
    let query = OscPacket::Message(OscMessage { addr: "/status".into(), args: vec![] });
    let bundle = OscPacket::Bundle(OscBundle {
        timetag: OscTime { seconds: 0, fractional: 1 },
        content: vec![query.clone(); 64],
    });
    let (bundle, query) = (rosc::encoder::encode(&bundle).unwrap(), rosc::encoder::encode(&query).unwrap());
    let mut request_bytes = (bundle.len() + UDP_OVERHEAD) as u64;
    socket.send_to(&bundle, serve.control).unwrap();
    let count_replies = |wait: Duration| {
        socket.set_read_timeout(Some(wait)).unwrap();
        let (mut replies, mut bytes) = (0u64, 0u64);
        let mut buf = vec![0u8; 65_536];
        while let Ok(n) = socket.recv(&mut buf) {
            replies += 1;
            bytes += (n + UDP_OVERHEAD) as u64;
        }
        (replies, bytes)
    };
    let (bundle_replies, mut reply_bytes) = count_replies(Duration::from_millis(300));
    assert_eq!(bundle_replies, 1, "one answer to a bundle of 64 queries");
    let flood = 5000u64;
    for _ in 0..flood {
        socket.send_to(&query, serve.control).unwrap();
        request_bytes += (query.len() + UDP_OVERHEAD) as u64;
    }
    let (flood_replies, flood_bytes) = count_replies(Duration::from_millis(300));
    reply_bytes += flood_bytes;
    let seconds = started.elapsed().as_secs() + 1;
    let bound = request_bytes + SOURCE_ALLOWANCE + SOURCE_TRICKLE * seconds;
    eprintln!(
        "[status flood] {} queries, {request_bytes} bytes on the wire; {} answers, {reply_bytes} bytes; bound {bound}",
        64 + flood,
        bundle_replies + flood_replies
    );
    assert!(reply_bytes <= bound, "{reply_bytes} reply bytes for {request_bytes} request bytes");
    assert!(flood_replies <= seconds * 2 + 1, "{flood_replies} answers to the flood in about {seconds} s");
    let drops = udp_drops(serve.control.port()).expect("serve's socket in /proc/net/udp");
    let status = status_of(&socket, serve.control, None);
    assert_adds_up(&status);
    let queries = named(&status, "status_answered") + named(&status, "status_refused");
    // The flood, the bundle's 64, and the final query (and its retries), less the kernel's drops.
    assert!(queries + drops > 64 + flood && queries <= 64 + flood + 20, "{queries} queries, {drops} drops: {status:?}");
    assert!(named(&status, "status_refused") >= 63, "{status:?}");
}

/// A master sending 25 fps timecode from `local` to `127.0.0.1:port` from frame `start`, one
/// frame every 40 ms, until `stop`.
fn scripted_master(
    local: &str,
    port: u16,
    start: i64,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let socket = UdpSocket::bind(local)?;
    Ok(std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let mut seq = 0;
        while !stop.load(Ordering::Relaxed) {
            let msg = TimecodeMessage::new(start + seq, FrameRate::FPS_25, true, seq, seq == 0, false);
            encode_timecode_bundle(&msg, timetag_from_system_time(SystemTime::now()), &mut bytes);
            let _ = socket.send_to(&bytes, ("127.0.0.1", port));
            seq += 1;
            std::thread::sleep(Duration::from_millis(40));
        }
    }))
}

/// Issue 14: `listen` followed whoever spoke first. With `--from 127.0.0.2` (or `listen_from`
/// in the config file), serve on 127.0.0.1, heard first, is refused, counted and reported once,
/// and the master on 127.0.0.2 is followed. The whole of 127.0.0.0/8 is local on Linux and
/// Windows; elsewhere (macOS) 127.0.0.2 exists only as an alias someone added, so the test is
/// ignored there and fails if run without it.
#[test]
#[cfg_attr(
    not(any(target_os = "linux", target_os = "windows")),
    ignore = "needs 127.0.0.2 on the loopback: sudo ifconfig lo0 alias 127.0.0.2 up"
)]
#[cfg_attr(windows, ignore = "ends the command with SIGINT through kill (Unix only)")]
fn with_from_only_that_source_can_become_the_master() {
    for config in [None, Some("[client]\nlisten_from = [\"127.0.0.2/32\"]\n")] {
        let port = free_port();
        let extra: &[&str] =
            if config.is_some() { &["--duration", "60"] } else { &["--from", "127.0.0.2", "--duration", "60"] };
        let mut listen = Listen::bound_with_config("faults_listen_from", config, port, extra);
        let _stranger = Serve::start("faults_listen_from_stranger", port, "01:00:00:00", &[]);
        let line = listen.streams.stderr_line(PATIENCE, "the line about the refused source");
        assert!(
            line.starts_with("osc-timecode: refusing datagrams from 127.0.0.1:")
                && line.ends_with(": not in --from (counted as refused)"),
            "{line}"
        );
        let stop = Arc::new(AtomicBool::new(false));
        let master = scripted_master("127.0.0.2:0", port, B_START, stop.clone())
            .unwrap_or_else(|e| panic!("cannot bind 127.0.0.2 ({e}): this test needs it on the loopback"));
        let locked = listen.until("locked onto 127.0.0.2", |o| state(o) == "locked");
        assert!(locked["master"].as_str().is_some_and(|m| m.starts_with("127.0.0.2:")), "{locked}");
        assert!(near(B_START).contains(&frame(&locked)), "{locked}");
        let later = listen.until("a second more", |o| frame(o) >= frame(&locked) + 25);
        assert!(counter(&later, "refused") >= 25, "serve's frames are refused: {later}");
        assert_eq!(counter(&later, "ignored"), 0, "refused before the chase sees them: {later}");
        for o in &listen.seen {
            if o["master"].is_string() {
                assert!(o["master"].as_str().unwrap().starts_with("127.0.0.2:"), "never serve: {o}");
            }
        }
        stop.store(true, Ordering::Relaxed);
        master.join().unwrap();
        let (status, stderr) = listen.interrupt();
        assert_eq!(status.code(), Some(0), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line for the refused source:\n{stderr}");
    }
}

/// Issue 14: `--record` grew without a cap. With a 1 KiB cap (the flag or the config key) the
/// file stops at the cap with one warning, and listen goes on following its master.
#[test]
#[cfg_attr(windows, ignore = "ends the command with SIGINT through kill (Unix only)")]
fn the_record_file_stops_at_its_cap_and_listen_goes_on() {
    for config in [None, Some("[client]\nrecord_max_bytes = \"1KiB\"\n")] {
        let port = free_port();
        // A scratch directory of its own: the listen command's is made afresh when it starts.
        let record = osc_timecode("faults_record_cap_file").dir().join("record.jsonl");
        let record = record.to_str().unwrap().to_owned();
        let mut extra = vec!["--record", &record, "--duration", "60"];
        if config.is_none() {
            extra.extend(["--record-max-bytes", "1024"]);
        }
        let mut listen = Listen::bound_with_config("faults_record_cap", config, port, &extra);
        let _serve = Serve::start("faults_record_cap_master", port, "01:00:00:00", &[]);
        let line = listen.streams.stderr_line(PATIENCE, "the line about the cap");
        assert_eq!(
            line,
            format!(
                "osc-timecode: record file {record} reached its cap of 1024 bytes (--record-max-bytes): recording \
                 stopped, listen goes on"
            )
        );
        let locked = listen.until("locked", |o| state(o) == "locked");
        listen.until("a second more", |o| frame(o) >= frame(&locked) + 25);
        let text = std::fs::read_to_string(&record).unwrap();
        assert!(text.len() <= 1024 && text.len() > 512, "{} bytes recorded", text.len());
        assert!(text.ends_with('\n') && text.lines().all(|l| l.starts_with('{') && l.ends_with('}')), "whole lines");
        let (status, stderr) = listen.interrupt();
        assert_eq!(status.code(), Some(0), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}

/// Issue 14: a full disk ended `listen`. Recording to /dev/full (every write fails with "no space
/// left") is one warning; listen locks and follows its master all the same.
#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_is_one_warning_and_listen_goes_on() {
    let port = free_port();
    let mut listen = Listen::bound("faults_record_full", port, &["--record", "/dev/full", "--duration", "60"]);
    let _serve = Serve::start("faults_record_full_master", port, "01:00:00:00", &[]);
    let line = listen.streams.stderr_line(PATIENCE, "the line about the write error");
    assert!(
        line.starts_with("osc-timecode: could not write the record file /dev/full: ")
            && line.ends_with("; recording stopped, listen goes on"),
        "{line}"
    );
    let locked = listen.until("locked", |o| state(o) == "locked");
    listen.until("a second more", |o| frame(o) >= frame(&locked) + 25);
    let (status, stderr) = listen.interrupt();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}
