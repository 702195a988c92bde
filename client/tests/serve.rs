//! `osc-timecode serve` through the real binary: timecode on loopback decoded and checked
//! against core's arithmetic, transport control, cues from our own client, from a raw rosc
//! socket, from strangers and without the token, python-osc and liblo's `oscdump` reading what
//! it sends, errors, and signals.
//!
//! Every `serve` runs as a child process behind a guard that kills it on drop, so a failing
//! assertion never leaves one behind; it listens on `127.0.0.1:0` (the port it got is read from
//! its startup line) and sends only to loopback sockets of the test. No assertion is about
//! speed (house rule); timeouts only bound tests that fail.
//!
//! python-osc and `oscdump` are installed by `.ci/run`. Their tests are
//! `#[ignore = "needs <tool>: <install>"]`, so `cargo test` lists them as ignored; run explicitly
//! (`-- --ignored`, as `.ci/run` does), a test whose tool is missing fails with the install command.

mod util;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use osc_timecode_core::cue::{Ack, AckStatus, CueId, status_from_osc};
use osc_timecode_core::protocol::{TimecodeMessage, decode_timecode_packet};
use osc_timecode_core::timecode::frame_start_nanos;
use osc_timecode_core::{FrameRate, Timecode};
use rosc::{OscMessage, OscPacket, OscTime, OscType};
use util::{Cmd, KillOnDrop, osc_timecode};

/// Bounds every wait of a test that fails; never reached by one that passes.
const PATIENCE: Duration = Duration::from_secs(10);

/// Waits up to [`PATIENCE`] for `child` to exit.
fn wait_exit(child: &mut Child, what: &str) -> ExitStatus {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = child.try_wait().unwrap_or_else(|e| panic!("{what}: could not wait: {e}")) {
            return status;
        }
        assert!(Instant::now() < deadline, "{what}: still running after {PATIENCE:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A running `serve`.
struct Serve {
    /// The process (killed on drop). Read only by `Serve::signal` (Unix); held everywhere.
    #[cfg_attr(not(unix), allow(dead_code))]
    child: KillOnDrop,
    /// Where it listens for cues and transport control.
    listen: SocketAddr,
    /// Its standard output, line by line.
    lines: Receiver<String>,
    /// Its standard error so far.
    stderr: Arc<Mutex<String>>,
    /// The command line, for messages.
    description: String,
    /// Standard error, line by line, after the startup line.
    stderr_lines: Receiver<String>,
}

impl Serve {
    /// `osc-timecode serve ARGS --listen 127.0.0.1:0` in a scratch directory named `test`.
    fn start(test: &str, args: &[&str]) -> Self {
        Self::start_cmd(osc_timecode(test).args(["serve"]).args(args))
    }

    /// Starts `cmd` (a `serve` command line) and waits for its startup line.
    fn start_cmd(cmd: &mut Cmd) -> Self {
        Self::start_listening(cmd, "127.0.0.1:0")
    }

    /// Starts `cmd` with `--listen LISTEN` and waits for its startup line.
    fn start_listening(cmd: &mut Cmd, listen: &str) -> Self {
        cmd.args(["--listen", listen]);
        let description = cmd.description().to_owned();
        let mut child = KillOnDrop(cmd.spawn());
        let stdout = child.0.stdout.take().expect("piped stdout");
        let stderr = child.0.stderr.take().expect("piped stderr");
        let (line_tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let text = Arc::new(Mutex::new(String::new()));
        let (ready_tx, ready) = mpsc::channel();
        {
            let text = Arc::clone(&text);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    text.lock().unwrap().push_str(&format!("{line}\n"));
                    // The startup line first, then every later line (--wait-for-port's).
                    let _ = ready_tx.send(line);
                }
            });
        }
        // The sender may warn (a refusing target) before the startup line is printed.
        let deadline = std::time::Instant::now() + PATIENCE;
        let startup = loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match ready.recv_timeout(left) {
                Ok(line) if line.starts_with("osc-timecode: serving ") => break line,
                Ok(_) => continue,
                Err(_) => {
                    let status = child.0.try_wait().ok().flatten();
                    panic!("{description}: no startup line (exit status {status:?}); stderr:\n{}", text.lock().unwrap())
                }
            }
        };
        assert!(startup.starts_with("osc-timecode: serving "), "{description}: startup line {startup:?}");
        // "... cues and transport on 127.0.0.1:PORT; Ctrl-C ends" (or "PORT (token required);").
        let listen = startup
            .split(" on ")
            .nth(1)
            .and_then(|rest| rest.split([';', ' ']).next())
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("no listen address in the startup line {startup:?}"));
        Self { child, listen, lines, stderr: text, description, stderr_lines: ready }
    }

    /// The next line on standard error after the startup line.
    fn stderr_line(&self, timeout: Duration, what: &str) -> String {
        self.stderr_lines.recv_timeout(timeout).unwrap_or_else(|_| {
            panic!("{}: no line on stderr for {what}; stderr:\n{}", self.description, self.stderr.lock().unwrap())
        })
    }

    /// The next line on standard output.
    fn line(&self, what: &str) -> String {
        self.lines.recv_timeout(PATIENCE).unwrap_or_else(|_| {
            panic!("{}: no line for {what}; stderr:\n{}", self.description, self.stderr.lock().unwrap())
        })
    }

    /// Sends `signal` (`INT`, `TERM`) and returns the exit status.
    #[cfg(unix)]
    fn signal(mut self, signal: &str) -> (ExitStatus, String) {
        let pid = self.child.0.id().to_string();
        let ok = Command::new("kill").args(["-s", signal, &pid]).status().is_ok_and(|s| s.success());
        assert!(ok, "kill -s {signal} {pid} failed");
        let status = wait_exit(&mut self.child.0, &self.description);
        // The stderr reader ends with the process.
        std::thread::sleep(Duration::from_millis(50));
        let stderr = self.stderr.lock().unwrap().clone();
        (status, stderr)
    }
}

/// A loopback socket receiving timecode, checking every packet as it comes: a bundle whose one
/// message core's strict decoder accepts (type tags, rate, label ↔ fields ↔ frame count), and
/// sequence numbers without a gap.
struct Timecodes {
    /// The socket `serve` sends to.
    socket: UdpSocket,
    /// The last sequence number seen.
    last_seq: Option<i64>,
}

/// One received frame.
#[derive(Debug, Clone, Copy)]
struct Frame {
    /// The bundle's timetag.
    tag: OscTime,
    /// The message.
    msg: TimecodeMessage,
}

impl Timecodes {
    fn bind() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(PATIENCE)).unwrap();
        Self { socket, last_seq: None }
    }

    fn addr(&self) -> String {
        self.socket.local_addr().unwrap().to_string()
    }

    fn next(&mut self) -> Frame {
        let mut buf = [0u8; 2048];
        let n = self.socket.recv(&mut buf).expect("a timecode packet within the timeout");
        let (tag, msg) = decode_timecode_packet(&buf[..n]).unwrap_or_else(|e| panic!("not valid timecode: {e}"));
        let tag = tag.expect("sent in a bundle");
        if let Some(last) = self.last_seq {
            assert_eq!(msg.seq, last + 1, "sequence numbers without a gap: {msg:?}");
        }
        self.last_seq = Some(msg.seq);
        Frame { tag, msg }
    }

    /// Reads until a frame satisfies `pred`; every frame before it must satisfy `before`.
    fn until(
        &mut self,
        what: &str,
        mut before: impl FnMut(&TimecodeMessage) -> bool,
        pred: impl Fn(&TimecodeMessage) -> bool,
    ) -> Frame {
        for _ in 0..500 {
            let f = self.next();
            if pred(&f.msg) {
                return f;
            }
            assert!(before(&f.msg), "while waiting for {what}: unexpected {:?}", f.msg);
        }
        panic!("no frame for {what} in 500");
    }
}

/// A timetag in nanoseconds since the NTP epoch, rounded to the nearest nanosecond.
fn tag_nanos(t: OscTime) -> i128 {
    i128::from(t.seconds) * 1_000_000_000 + ((i128::from(t.fractional) * 1_000_000_000 + (1 << 31)) >> 32)
}

/// A loopback socket sending control messages and reading replies.
struct Control {
    socket: UdpSocket,
    to: SocketAddr,
}

impl Control {
    fn new(to: SocketAddr) -> Self {
        Self::bound("127.0.0.1:0", to).expect("a loopback socket")
    }

    /// From a given local address (a stranger binds to 127.0.0.2).
    fn bound(local: &str, to: SocketAddr) -> std::io::Result<Self> {
        let socket = UdpSocket::bind(local)?;
        socket.set_read_timeout(Some(PATIENCE))?;
        Ok(Self { socket, to })
    }

    fn send(&self, addr: &str, args: Vec<OscType>) {
        let msg = OscPacket::Message(OscMessage { addr: addr.to_owned(), args });
        self.socket.send_to(&rosc::encoder::encode(&msg).unwrap(), self.to).unwrap();
    }

    fn reply(&self) -> OscMessage {
        let mut buf = [0u8; 65536];
        let n = self.socket.recv(&mut buf).expect("a reply within the timeout");
        match rosc::decoder::decode_udp(&buf[..n]).expect("a valid reply").1 {
            OscPacket::Message(m) => m,
            OscPacket::Bundle(b) => panic!("replies are bare messages, got {b:?}"),
        }
    }

    /// Sends and returns the `/ack`.
    fn request(&self, addr: &str, args: Vec<OscType>) -> Ack {
        self.send(addr, args);
        let reply = self.reply();
        Ack::from_osc(&reply).unwrap_or_else(|| panic!("expected an /ack for {addr}, got {reply:?}"))
    }

    /// Asserts nothing comes back within `wait` (the caller sent something that must be dropped).
    fn silence(&self, wait: Duration, what: &str) {
        self.socket.set_read_timeout(Some(wait)).unwrap();
        let mut buf = [0u8; 65536];
        let got = self.socket.recv(&mut buf);
        self.socket.set_read_timeout(Some(PATIENCE)).unwrap();
        assert!(got.is_err(), "{what}: expected no reply, got {} bytes", got.map_or(0, |n| n));
    }

    /// `/status [TOKEN]` as name → count.
    fn status(&self, token: Option<&str>) -> Vec<(String, u64)> {
        self.send("/status", token.map(|t| vec![OscType::String(t.to_owned())]).unwrap_or_default());
        let reply = self.reply();
        status_from_osc(&reply).unwrap_or_else(|| panic!("expected /status, got {reply:?}"))
    }
}

fn get(status: &[(String, u64)], name: &str) -> u64 {
    status.iter().find(|(n, _)| n == name).map(|(_, v)| *v).unwrap_or_else(|| panic!("no {name} in {status:?}"))
}

/// `received` = `acked` + every `dropped_*` + `status_answered` + `status_refused`.
fn check_sum(status: &[(String, u64)]) {
    let dropped: u64 = status.iter().filter(|(n, _)| n.starts_with("dropped_")).map(|(_, v)| v).sum();
    let status_queries = get(status, "status_answered") + get(status, "status_refused");
    assert_eq!(get(status, "received"), get(status, "acked") + dropped + status_queries, "{status:?}");
}

fn ok(address: &str) -> Ack {
    Ack { address: address.to_owned(), id: None, status: AckStatus::Ok }
}

fn s(text: &str) -> OscType {
    OscType::String(text.to_owned())
}

/// Frames in order from `--start`, labels by core's arithmetic, timetags exactly one frame
/// apart from one anchor.
fn frames_follow_the_schedule(test: &str, rate_name: &str, start: &str, labels: &[&str]) {
    let rate: FrameRate = rate_name.parse().unwrap();
    let mut rx = Timecodes::bind();
    let _serve = Serve::start(test, &["--rate", rate_name, "--start", start, "--to", &rx.addr()]);
    let first = rx.next();
    let start_frame = Timecode::parse(start, rate).unwrap().to_frame();
    assert_eq!((first.msg.frame, first.msg.seq, first.msg.playing, first.msg.jump), (start_frame, 0, true, true));
    let mut got_labels = vec![first.msg.timecode.to_string()];
    for k in 1..40i64 {
        let f = rx.next();
        let m = f.msg;
        assert_eq!((m.frame, m.playing, m.jump, m.looped), (start_frame + k, true, false, false), "frame {k}: {m:?}");
        assert_eq!(m.rate(), rate);
        assert_eq!(m.timecode, Timecode::from_frame(start_frame + k, rate), "label of frame {k}");
        // Frame k is due ceil(k·den/num) s after the first: each tag is that offset rounded
        // to NTP fractions and back, so ±1 ns per tag.
        let offset = tag_nanos(f.tag) - tag_nanos(first.tag);
        let want = frame_start_nanos(k, rate);
        assert!((offset - want).abs() <= 2, "frame {k}: timetag {offset} ns after the first, want {want} ± 2");
        got_labels.push(m.timecode.to_string());
    }
    assert_eq!(&got_labels[..labels.len()], labels, "labels from --start");
}

#[test]
fn frames_at_25_follow_the_schedule_across_the_hour() {
    frames_follow_the_schedule("serve_25", "25", "00:59:59:23", &["00:59:59:23", "00:59:59:24", "01:00:00:00"]);
}

#[test]
fn frames_at_29_97df_follow_the_schedule_across_a_dropped_minute() {
    frames_follow_the_schedule(
        "serve_2997df",
        "29.97df",
        "00:00:59;28",
        &["00:00:59;28", "00:00:59;29", "00:01:00;02"],
    );
}

/// Regression (issue 14): the default `--start` was the label `00:00:00:00`, which is not a
/// label at drop-frame rates, so `serve --rate 29.97df` (or `rate = "29.97df"` in the config
/// file) exited at once. Every rate, from the flag and from the config key, serves frame 0.
#[test]
fn every_rate_serves_from_frame_0_without_start_from_the_flag_or_the_config_file() {
    for rate in FrameRate::ALL {
        for from_config in [false, true] {
            let mut rx = Timecodes::bind();
            let mut cmd = osc_timecode("serve_default_start");
            if from_config {
                cmd.write_config(&format!("[client]\nrate = \"{}\"\n", rate.name()));
                cmd.args(["serve", "--to", &rx.addr()]);
            } else {
                cmd.args(["serve", "--rate", rate.name(), "--to", &rx.addr()]);
            }
            let serve = Serve::start_cmd(&mut cmd);
            let zero = Timecode::from_frame(0, rate);
            let first = rx.next().msg;
            let what = format!("{rate} (from the config file: {from_config})");
            assert_eq!((first.frame, first.rate(), first.timecode, first.jump), (0, rate, zero, true), "{what}");
            assert_eq!(rx.next().msg.frame, 1, "{what}: rolling");
            let stderr = serve.stderr.lock().unwrap().clone();
            assert!(stderr.contains(&format!("at rate {rate} from {zero} (rolling)")), "{what}: {stderr}");
        }
    }
}

#[test]
fn transport_control_parks_rolls_and_locates() {
    let mut rx = Timecodes::bind();
    let serve = Serve::start(
        "serve_transport",
        &["--stopped", "--keepalive-ms", "100", "--start", "00:00:10:00", "--to", &rx.addr()],
    );
    let ctl = Control::new(serve.listen);

    // Parked: the position with a jump, then keep-alives without.
    let m = rx.next().msg;
    assert_eq!((m.frame, m.playing, m.jump, m.seq), (250, false, true, 0));
    for _ in 0..2 {
        let m = rx.next().msg;
        assert_eq!((m.frame, m.playing, m.jump), (250, false, false), "keep-alive");
    }

    // Play: rolls from the parked frame, with a jump.
    assert_eq!(ctl.request("/transport/play", vec![]), ok("/transport/play"));
    assert_eq!(serve.line("play"), "play at 00:00:10:00");
    let parked = |m: &TimecodeMessage| (m.frame, m.playing, m.jump) == (250, false, false);
    let m = rx.until("rolling", parked, |m| m.playing).msg;
    assert_eq!((m.frame, m.jump), (250, true));
    let mut last = m.frame;
    for _ in 0..3 {
        let m = rx.next().msg;
        assert_eq!((m.frame, m.playing, m.jump), (last + 1, true, false));
        last = m.frame;
    }

    // Stop: parks where it was (the frame last sent or the next), no jump; keep-alives follow.
    assert_eq!(ctl.request("/transport/stop", vec![]), ok("/transport/stop"));
    let line = serve.line("stop");
    let m = rx
        .until(
            "parked",
            |m| {
                let follows = m.playing && m.frame == last + 1 && !m.jump;
                last = m.frame;
                follows
            },
            |m| !m.playing,
        )
        .msg;
    assert!(!m.jump && (m.frame == last || m.frame == last + 1), "parked {m:?} after frame {last}");
    assert_eq!(line, format!("stop at {}", m.timecode));
    let p = m.frame;
    let m = rx.next().msg;
    assert_eq!((m.frame, m.playing, m.jump), (p, false, false), "keep-alive of the stop position");

    // Locate while parked: parks there, with a jump.
    assert_eq!(ctl.request("/transport/locate", vec![s("01:00:00:00")]), ok("/transport/locate"));
    assert_eq!(serve.line("locate"), "locate 01:00:00:00");
    let m = rx.until("located", |m| m.frame == p && !m.playing, |m| m.frame != p).msg;
    assert_eq!((m.frame, m.playing, m.jump), (90_000, false, true));
    assert_eq!(m.timecode.to_string(), "01:00:00:00");

    // Play from there, then locate while rolling: goes on from the new label, with a jump.
    assert_eq!(ctl.request("/transport/play", vec![]), ok("/transport/play"));
    assert_eq!(serve.line("play"), "play at 01:00:00:00");
    let m = rx.until("rolling", |m| m.frame == 90_000 && !m.playing, |m| m.playing).msg;
    assert_eq!((m.frame, m.jump), (90_000, true));
    assert_eq!(ctl.request("/transport/locate", vec![s("02:00:00:00")]), ok("/transport/locate"));
    assert_eq!(serve.line("locate"), "locate 02:00:00:00");
    let m = rx.until("relocated", |m| m.playing && m.frame < 180_000 && !m.jump, |m| m.frame >= 180_000).msg;
    assert_eq!((m.frame, m.playing, m.jump), (180_000, true, true));
    let m = rx.next().msg;
    assert_eq!((m.frame, m.playing, m.jump), (180_001, true, false));

    // Refusals: each acked, nothing changes, nothing printed.
    for (addr, args, status) in [
        ("/transport/locate", vec![s("2:00")], AckStatus::BadArgument),
        ("/transport/locate", vec![s("00:00:00;00")], AckStatus::BadArgument),
        ("/transport/locate", vec![s("24:00:00:00")], AckStatus::BadArgument),
        ("/transport/locate", vec![OscType::Int(5)], AckStatus::BadArgument),
        ("/transport/locate", vec![], AckStatus::BadArgument),
        ("/transport/stop", vec![OscType::Int(1)], AckStatus::BadArgument),
        ("/transport/rewind", vec![], AckStatus::Unmapped),
    ] {
        let ack = ctl.request(addr, args.clone());
        assert_eq!((ack.address.as_str(), ack.id, ack.status), (addr, None, status), "{addr} {args:?}");
    }
    let status = ctl.status(None);
    check_sum(&status);
    assert_eq!((get(&status, "acked"), get(&status, "dropped_bad_argument")), (5, 6));
    assert!(get(&status, "timecode_sent") > 0);
    assert!(serve.lines.try_recv().is_err(), "no line for a refused command");
}

#[test]
fn cues_from_our_client_and_raw_retries() {
    let serve = Serve::start("serve_cues", &["--start", "01:00:00:00", "--to", &Timecodes::bind().addr()]);
    let master = serve.listen.to_string();
    let out = osc_timecode("serve_cue_client").args(["cue", "12", "100", "--id", "7", "--master", &master]).stdout();
    assert_eq!(out, "ok /cue/12 id 7\n");
    let line = serve.line("the cue");
    let label = line.strip_prefix("cue /cue/12 value 100 id 7 at ").unwrap_or_else(|| panic!("cue line {line:?}"));
    Timecode::parse(label, FrameRate::FPS_25).unwrap_or_else(|e| panic!("{line:?}: {e}"));
    assert!(label.starts_with("01:00:"), "{line}");

    // A raw sender's retry of the same ID: duplicate, and printed once.
    let ctl = Control::new(serve.listen);
    let cue = || vec![OscType::Int(100), OscType::Long(7)];
    let ack = ctl.request("/cue/12", cue());
    assert_eq!((ack.id, ack.status), (Some(CueId::Long(7)), AckStatus::Ok));
    assert!(serve.line("the raw cue").starts_with("cue /cue/12 value 100 id 7 at 01:00:"));
    assert_eq!(ctl.request("/cue/12", cue()).status, AckStatus::Duplicate);
    // The next line is the trigger's: the duplicate printed nothing.
    let out = osc_timecode("serve_trigger_client").args(["trigger", "go", "0.5", "--master", &master]).stdout();
    assert!(out.starts_with("ok /trigger/go id "), "{out}");
    let line = serve.line("the trigger");
    assert!(line.starts_with("trigger /trigger/go value 64 id ") && line.contains(" at 01:00:"), "{line}");

    assert_eq!(ctl.request("/nope", vec![]).status, AckStatus::Unmapped);
    assert_eq!(ctl.request("/cue/1", vec![s("x")]).status, AckStatus::BadArgument);
    let status = ctl.status(None);
    check_sum(&status);
    // Our client may have retried (a busy machine): retries are duplicates.
    let retries = get(&status, "dropped_duplicate") - 1;
    assert_eq!(get(&status, "received"), 6 + retries + 1, "{status:?}: the cues and this query");
    assert_eq!(
        [get(&status, "acked"), get(&status, "dropped_unmapped"), get(&status, "dropped_bad_argument")],
        [3, 1, 1]
    );
}

/// The whole of 127.0.0.0/8 is local on Linux and Windows; elsewhere (macOS) 127.0.0.2 exists only
/// as an alias someone added, so the test is ignored there and fails if run without it.
#[test]
#[cfg_attr(
    not(any(target_os = "linux", target_os = "windows")),
    ignore = "needs 127.0.0.2 on the loopback: sudo ifconfig lo0 alias 127.0.0.2 up"
)]
fn strangers_get_no_reply() {
    let serve = Serve::start("serve_stranger", &["--allow", "127.0.0.1/32", "--to", &Timecodes::bind().addr()]);
    let stranger = Control::bound("127.0.0.2:0", serve.listen)
        .unwrap_or_else(|e| panic!("cannot bind 127.0.0.2 ({e}): this test needs it on the loopback"));
    stranger.send("/cue/1", vec![]);
    stranger.send("/status", vec![]);
    stranger.silence(Duration::from_millis(300), "a sender outside --allow");
    let friend = Control::new(serve.listen);
    let status = friend.status(None);
    assert_eq!((get(&status, "received"), get(&status, "dropped_not_allowed")), (3, 2), "the two and this query");
    assert!(serve.lines.try_recv().is_err(), "nothing printed for a stranger");
}

#[test]
fn a_token_from_the_config_file_guards_cues_status_and_transport() {
    let mut cmd = osc_timecode("serve_token");
    cmd.write_config("[client]\ntoken = \"s3cret\"\n");
    let serve = Serve::start_cmd(cmd.args(["serve", "--to", &Timecodes::bind().addr()]));
    let master = serve.listen.to_string();
    let line = osc_timecode("serve_token_missing")
        .args(["cue", "1", "--retries", "0", "--timeout-ms", "300", "--master", &master])
        .not_done();
    assert!(line.starts_with("no /ack from"), "{line}");
    let ctl = Control::new(serve.listen);
    ctl.send("/status", vec![]);
    ctl.send("/transport/stop", vec![s("wrong")]);
    ctl.silence(Duration::from_millis(300), "no token or a wrong one");
    let out = osc_timecode("serve_token_given").args(["cue", "1", "--token", "s3cret", "--master", &master]).stdout();
    assert!(out.starts_with("ok /cue/1 id "), "{out}");
    assert!(serve.line("the cue").starts_with("cue /cue/1 id "));
    assert_eq!(ctl.request("/transport/stop", vec![s("s3cret")]), ok("/transport/stop"));
    let status = ctl.status(Some("s3cret"));
    check_sum(&status);
    assert_eq!((get(&status, "dropped_bad_token"), get(&status, "acked")), (3, 2));
}

#[test]
fn errors_are_one_line_with_status_2() {
    let held = UdpSocket::bind("127.0.0.1:0").unwrap();
    let taken = held.local_addr().unwrap().to_string();
    let cases: [(&[&str], &str); 9] = [
        (&["--listen", &taken], "could not listen on"),
        (&["--start", "25:00:00:00"], "out of range"),
        (&["--start", "1:00:00:00"], "malformed timecode"),
        (&["--rate", "29.97df", "--start", "00:00:00:00"], "wrong separator"),
        (&["--rate", "29.97df", "--start", "00:01:00;00"], "00:01:00;00"),
        (&["--rate", "26"], "unknown frame rate"),
        (&["--to", "localhost:5006"], "invalid socket address"),
        (&["--allow", "example.com"], "not an IP address"),
        (&["--keepalive-ms", "5000000"], "--keepalive-ms"),
    ];
    for (args, needle) in cases {
        let mut cmd = osc_timecode("serve_errors");
        // A free port for the cases that are not about it, and nowhere to send: if a case
        // wrongly starts, it is killed below.
        let mut all = vec!["serve", "--to", "127.0.0.1:9"];
        if !args.contains(&"--listen") {
            all.extend(["--listen", "127.0.0.1:0"]);
        }
        all.extend(args);
        cmd.args(&all);
        let mut child = KillOnDrop(cmd.spawn());
        let status = wait_exit(&mut child.0, cmd.description());
        let (mut out, mut err) = (String::new(), String::new());
        child.0.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        child.0.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        assert_eq!(status.code(), Some(2), "{args:?}: exit status; stderr {err:?}");
        assert!(out.is_empty(), "{args:?}: stdout {out:?}");
        assert!(err.lines().count() == 1 && err.starts_with("osc-timecode: "), "{args:?}: one line, got {err:?}");
        assert!(err.contains(needle), "{args:?}: {needle:?} in {err:?}");
        assert!(!err.contains("panicked"), "{err}");
    }
    drop(held);
}

#[test]
fn with_wait_for_port_a_taken_listen_port_delays_cues_not_timecode() {
    let held = UdpSocket::bind("127.0.0.1:0").unwrap();
    let listen = held.local_addr().unwrap();
    let mut tc = Timecodes::bind();
    let serve = Serve::start_listening(
        osc_timecode("serve_wait").args(["serve", "--to", &tc.addr(), "--wait-for-port"]),
        &listen.to_string(),
    );
    assert_eq!(serve.listen, listen, "the startup line names the address it waits for");
    let line = serve.stderr_line(PATIENCE, "the waiting line");
    assert_eq!(
        line,
        format!(
            "osc-timecode: cues and transport: {listen} is in use; retrying every second; timecode is sent meanwhile"
        )
    );
    // Timecode flows while the port is taken (Timecodes checks every packet and the sequence).
    let first = tc.next();
    assert!(first.msg.jump && first.msg.seq == 0, "{first:?}");
    for _ in 0..50 {
        tc.next();
    }
    drop(held);
    let freed = Instant::now();
    let line = serve.stderr_line(Duration::from_secs(5), "the line saying it listens");
    assert_eq!(line, format!("osc-timecode: cues and transport on {listen} now"));
    // Liveness, not speed: one retry a second.
    assert!(freed.elapsed() < Duration::from_secs(3), "bound {:?} after the port was freed", freed.elapsed());
    let ctl = Control::new(listen);
    assert_eq!(ctl.request("/cue/7", vec![]), ok("/cue/7"));
    let status = ctl.status(None);
    check_sum(&status);
    assert_eq!(get(&status, "acked"), 1);
    // The clock never stopped: the frames still follow one another without a gap.
    let f = tc.until("frames after the port was freed", |_| true, |m| m.seq > 100);
    assert!(!f.msg.jump && f.msg.frame == first.msg.frame + f.msg.seq, "{f:?}");
    assert!(serve.line("the cue line").starts_with("cue /cue/7 at "));
}

/// Port 0 is no destination: Linux refuses the datagram (EINVAL) at `sendto`. (A closed port
/// is not an error for serve's unconnected socket: Linux reports ICMP "port unreachable" only to
/// connected sockets, so those datagrams count as sent.)
#[test]
fn a_target_that_refuses_is_counted_and_the_others_get_every_frame() {
    let mut tc = Timecodes::bind();
    let serve = Serve::start("serve_refused", &["--to", "127.0.0.1:0", "--to", &tc.addr()]);
    // The warning may come before or after the startup line: look for it in all of stderr.
    let deadline = std::time::Instant::now() + PATIENCE;
    let warning = loop {
        let text = serve.stderr.lock().unwrap().clone();
        if let Some(line) = text.lines().find(|l| l.starts_with("osc-timecode: could not send")) {
            break line.to_owned();
        }
        assert!(std::time::Instant::now() < deadline, "no send warning; stderr:\n{text}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        warning.starts_with("osc-timecode: could not send timecode to 127.0.0.1:0: ")
            && warning.ends_with(" (reported at most every 10 s)"),
        "{warning}"
    );
    let first = tc.next();
    assert_eq!(first.msg.seq, 0);
    // Every frame reaches the good target (Timecodes checks the sequence has no gap).
    let last = (0..50).map(|_| tc.next()).last().unwrap();
    assert_eq!(last.msg.frame, first.msg.frame + 50);
    let status = Control::new(serve.listen).status(None);
    let (sent, errors) = (get(&status, "timecode_sent"), get(&status, "timecode_send_errors"));
    // Each frame went once to each target: one sent, one refused (the status may fall between
    // the two sends of a frame).
    assert!(sent >= 51 && errors.abs_diff(sent) <= 1, "{status:?}");
    let text = serve.stderr.lock().unwrap().clone();
    let warnings = text.lines().filter(|l| l.starts_with("osc-timecode: could not send")).count();
    assert_eq!(warnings, 1, "one warning, not one per frame; stderr:\n{text}");
}

#[cfg(unix)]
#[test]
fn sigint_and_sigterm_end_it_cleanly() {
    for signal in ["INT", "TERM"] {
        let serve = Serve::start(&format!("serve_sig{signal}"), &["--to", &Timecodes::bind().addr()]);
        let (status, stderr) = serve.signal(signal);
        assert_eq!(status.code(), Some(0), "SIG{signal}: exit status; stderr:\n{stderr}");
        assert_eq!(stderr.lines().count(), 1, "SIG{signal}: only the startup line:\n{stderr}");
    }
}

/// Fails the test, with the install command, when `tool` is not there.
#[track_caller]
fn require(tool: &str, present: bool, install: &str) {
    assert!(present, "{tool} is not installed: this test needs it ({install}; .ci/run does this)");
}

const PYTHON_PEER: &str = r#"
import socket, sys
from pythonosc.osc_bundle import OscBundle
from pythonosc.udp_client import SimpleUDPClient

def words(params):
    tags = "".join("s" if isinstance(p, str) else "i" if isinstance(p, int) else "?" for p in params)
    return " ".join([tags] + [str(p) for p in params])

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", 0))
sock.settimeout(10)
print(sock.getsockname()[1], flush=True)
listen_port = int(sys.stdin.readline())
for _ in range(10):
    data, _ = sock.recvfrom(65536)
    assert OscBundle.dgram_is_bundle(data), data
    bundle = OscBundle(data)
    assert bundle.num_contents == 1, bundle.num_contents
    msg = bundle.content(0)
    print("frame", data[8:16].hex(), msg.address, words(msg.params), flush=True)
client = SimpleUDPClient("127.0.0.1", listen_port)
client.send_message("/cue/5", [64, 99])
ack = next(client.get_messages(10))
print("ack", ack.address, words(ack.params), flush=True)
"#;

/// Fails, saying how to install it, unless python-osc is importable.
#[track_caller]
fn require_python_osc() {
    let present = Command::new("python3")
        .args(["-c", "import pythonosc"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    require("python-osc", present, "python3 -m pip install python-osc==1.10.2");
}

#[test]
#[ignore = "needs python-osc: python3 -m pip install python-osc==1.10.2"]
fn python_osc_reads_the_timecode_and_gets_its_cue_acked() {
    require_python_osc();
    let rate = FrameRate::FPS_29_97_DF;
    let mut python = KillOnDrop(
        Command::new("python3")
            .args(["-c", PYTHON_PEER])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 starts"),
    );
    let mut out = BufReader::new(python.0.stdout.take().unwrap());
    let mut port = String::new();
    out.read_line(&mut port).unwrap();
    let port: u16 = port.trim().parse().unwrap_or_else(|_| panic!("python's port, got {port:?}"));
    let to = format!("127.0.0.1:{port}");
    let serve = Serve::start("serve_python", &["--rate", "29.97df", "--start", "10:00:00;00", "--to", &to]);
    writeln!(python.0.stdin.take().unwrap(), "{}", serve.listen.port()).unwrap();
    let mut printed = String::new();
    out.read_to_string(&mut printed).unwrap();
    let status = wait_exit(&mut python.0, "python3");
    let mut err = String::new();
    python.0.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(status.success(), "python3 failed ({status}):\n{err}");

    let lines: Vec<Vec<&str>> = printed.lines().map(|l| l.split(' ').collect()).collect();
    assert_eq!(lines.len(), 11, "ten frames and the ack:\n{printed}");
    let mut first: Option<(i64, i128)> = None;
    for (i, w) in lines[..10].iter().enumerate() {
        // frame TAG /sync/timecode TYPES label h m s f num den drop frame playing seq jump loop
        assert_eq!(w.len(), 17, "{w:?}");
        assert_eq!(&w[..1], ["frame"]);
        assert_eq!((w[2], w[3]), ("/sync/timecode", "siiiiiiiiiiii"), "python-osc reads 13 arguments");
        let tc = Timecode::parse(w[4], rate).unwrap_or_else(|e| panic!("{}: {e}", w[4]));
        let n: Vec<i64> = w[5..].iter().map(|v| v.parse().unwrap()).collect();
        let frame = n[7];
        let fields = [tc.hours(), tc.minutes(), tc.seconds(), tc.frames()].map(i64::from);
        assert_eq!(n[..4], fields, "fields of {}", w[4]);
        assert_eq!((n[4], n[5], n[6], n[8], n[11]), (30000, 1001, 1, 1, 0), "rate, drop, playing, loop");
        assert_eq!(Timecode::from_frame(frame, rate), tc, "label and frame count agree");
        let tag = OscTime {
            seconds: u32::from_str_radix(&w[1][..8], 16).unwrap(),
            fractional: u32::from_str_radix(&w[1][8..], 16).unwrap(),
        };
        let (first_frame, first_tag) = *first.get_or_insert((frame, tag_nanos(tag)));
        assert_eq!(frame, first_frame + i as i64, "consecutive frames");
        let offset = tag_nanos(tag) - first_tag;
        assert!((offset - frame_start_nanos(i as i64, rate)).abs() <= 2, "timetag {i}: {offset} ns after the first");
    }
    assert_eq!(lines[10], ["ack", "/ack", "sis", "/cue/5", "99", "ok"]);
    assert!(serve.line("python's cue").starts_with("cue /cue/5 value 64 id 99 at 10:00:"));
}

#[test]
#[ignore = "needs oscdump: apt-get install liblo-tools"]
fn oscdump_shows_well_formed_timecode() {
    let present = Command::new("oscdump").arg("-h").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
    require("oscdump", present, "apt-get install liblo-tools");
    let port = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut dump = KillOnDrop(
        Command::new("oscdump")
            .args(["-L", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("oscdump starts"),
    );
    let (tx, lines) = mpsc::channel();
    let stdout = dump.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Rolling: whatever oscdump catches once it has bound is a run of consecutive frames.
    let _serve = Serve::start("serve_oscdump", &["--start", "12:34:56:07", "--to", &format!("127.0.0.1:{port}")]);
    let start = Timecode::parse("12:34:56:07", FrameRate::FPS_25).unwrap().to_frame();
    let mut previous: Option<(i64, i64)> = None;
    for _ in 0..5 {
        let line = lines.recv_timeout(PATIENCE).expect("oscdump prints our packets");
        // `eeaf6e72.3d875f70 /sync/timecode siiiiiiihihii "12:34:56:07" 12 34 56 7 25 1 0 1132407 1 0 1 0`
        let w: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(w.len(), 16, "{line}");
        let (tag, fraction) = w[0].split_once('.').unwrap_or_else(|| panic!("the bundle's timetag first: {line}"));
        assert!(tag.len() == 8 && fraction.len() == 8, "timetag as hex: {line}");
        assert_eq!(&w[1..3], ["/sync/timecode", "siiiiiiihihii"], "{line}");
        let label = w[3].trim_matches('"');
        let tc = Timecode::parse(label, FrameRate::FPS_25).unwrap_or_else(|e| panic!("{line}: {e}"));
        let n: Vec<i64> = w[4..].iter().map(|v| v.parse().unwrap_or_else(|_| panic!("integers: {line}"))).collect();
        let (frame, seq, jump) = (n[7], n[9], n[10]);
        assert_eq!(n[..4], [tc.hours(), tc.minutes(), tc.seconds(), tc.frames()].map(i64::from), "{line}");
        assert_eq!((n[4], n[5], n[6], n[8], n[11]), (25, 1, 0, 1, 0), "rate, drop, playing, loop: {line}");
        assert_eq!(Timecode::from_frame(frame, FrameRate::FPS_25), tc, "{line}");
        assert_eq!(jump, i64::from(frame == start), "jump on the first frame only: {line}");
        if let Some((f, s)) = previous {
            assert_eq!((frame, seq), (f + 1, s + 1), "{line}");
        }
        previous = Some((frame, seq));
    }
}

/// `/sync/ping` at serve (issue 18): a receiver pings the address its timecode comes from, from
/// the socket the timecode reaches. serve answers from that socket: ID and ORIGIN echoed, T2 ≤
/// T3 on the timescale of its timetags (between the timetags of the frames around it), epoch 0,
/// exactly as long as the ping. A sender serve may not talk to (not a target's address, not in
/// `--allow`) is not answered, a flood is cut at 20 a second, and `/status` counts both.
#[test]
#[cfg_attr(target_os = "macos", ignore = "needs 127.0.0.2 (sudo ifconfig lo0 alias 127.0.0.2 up)")]
fn sync_pings_are_answered_on_the_timecode_socket_on_the_timetags_timescale() {
    use osc_timecode_core::clocksync::{Ping, Pong};
    let mut rx = Timecodes::bind();
    let serve = Serve::start("serve_sync", &["--rate", "25", "--to", &rx.addr(), "--allow", "127.0.0.1"]);
    // Where the timecode comes from: the first packet's source.
    let mut buf = [0u8; 2048];
    let (_, source) = rx.socket.recv_from(&mut buf).expect("timecode");
    let before = rx.next().tag;
    let ping = Ping { id: 41, origin: -7 };
    rx.socket.send_to(&ping.encode(), source).unwrap();
    let pong = loop {
        let (n, from) = rx.socket.recv_from(&mut buf).expect("a pong within the timeout");
        if let Ok(pong) = Pong::decode(&buf[..n]) {
            assert_eq!(from, source, "the pong leaves from the timecode's socket");
            assert_eq!(n, ping.encode().len(), "a pong is exactly as long as its ping");
            break pong;
        }
    };
    let after = rx.next().tag;
    assert_eq!((pong.id, pong.origin, pong.epoch), (41, -7, 0));
    let (t2, t3) = (tag_nanos(pong.received), tag_nanos(pong.sent));
    assert!(t2 <= t3, "received before sent: {t2} {t3}");
    assert!(tag_nanos(before) <= t2 && t3 <= tag_nanos(after) + 40_000_000, "T2, T3 on the timetags' timescale");

    // A stranger: loopback but neither a target's address nor in --allow.
    let stranger = UdpSocket::bind("127.0.0.2:0").expect("127.0.0.2 (Linux has all of 127/8)");
    stranger.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    stranger.send_to(&ping.encode(), source).unwrap();
    assert!(stranger.recv(&mut buf).is_err(), "a stranger's ping is not answered");

    // A flood from the target: at most 20 answered in a second.
    for id in 0..40 {
        rx.socket.send_to(&Ping { id, origin: 0 }.encode(), source).unwrap();
    }
    let deadline = Instant::now() + Duration::from_millis(500);
    let mut pongs = 0;
    rx.socket.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    while Instant::now() < deadline {
        if let Ok(n) = rx.socket.recv(&mut buf)
            && Pong::decode(&buf[..n]).is_ok()
        {
            pongs += 1;
        }
    }
    assert_eq!(pongs, 19, "20 a second from one source (one was answered above)");
    let status = Control::new(serve.listen).status(None);
    assert_eq!((get(&status, "sync_answered"), get(&status, "sync_refused")), (20, 22), "{status:?}");
}

/// serve's `/sync/pong`, as python-osc (a decoder nobody here wrote) reads it: the address, ID
/// and ORIGIN echoed, two timetags, the epoch (issue 18).
#[test]
#[ignore = "needs python-osc: python3 -m pip install python-osc==1.10.2"]
fn python_osc_reads_serve_s_pong() {
    use osc_timecode_core::clocksync::{Ping, Pong};
    require_python_osc();
    let rx = Timecodes::bind();
    let _serve = Serve::start("serve_sync_python", &["--rate", "25", "--to", &rx.addr()]);
    let mut buf = [0u8; 2048];
    let (_, source) = rx.socket.recv_from(&mut buf).expect("timecode");
    rx.socket.send_to(&Ping { id: 41, origin: -7 }.encode(), source).unwrap();
    let (n, pong) = loop {
        let n = rx.socket.recv(&mut buf).expect("a pong within the timeout");
        if let Ok(pong) = Pong::decode(&buf[..n]) {
            break (n, pong);
        }
    };
    let hex: String = buf[..n].iter().map(|b| format!("{b:02x}")).collect();
    let script = "import sys\nfrom pythonosc.osc_message import OscMessage\n\
                  m = OscMessage(bytes.fromhex(sys.argv[1]))\n\
                  print(m.address, len(m.params), m.params[0], m.params[1], m.params[2][1], m.params[3][1], m.params[4])";
    let out = Command::new("python3").args(["-c", script, &hex]).output().expect("python3 runs");
    assert!(out.status.success(), "python-osc failed: {}", String::from_utf8_lossy(&out.stderr));
    let expected = format!("/sync/pong 5 41 -7 {} {} {}\n", pong.received.fractional, pong.sent.fractional, pong.epoch);
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
}
