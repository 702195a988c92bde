//! MTC through JACK (issue 17), from the real binaries: `osc-timecode serve` plays, `osc-timecode
//! listen --mtc jack:PORT` chases it and sends MTC into a JACK MIDI port, `jack_midi_dump` (JACK's
//! own tool) records each message with its JACK frame time, and mido (PyPI, not written here)
//! reads the bytes. A private JACK server (`jackd -d dummy`, 48 kHz, 256-frame periods) runs for
//! the test and is stopped at its end, also when it fails ([`Jack`]'s `Drop`).
//!
//! Also: the errors `--mtc` gives without a JACK server or with a MIDI port that does not exist
//! (exit 2, one line), which need no tool.

mod util;

#[path = "util/jack.rs"]
mod jack;

#[path = "../../core/tests/interop/mido.rs"]
#[allow(dead_code, reason = "this test reads dumps with its own script; the checker is for samples")]
mod mido;

use std::net::UdpSocket;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jack::{Jack, require_tools};
use util::{KillOnDrop, free_port, osc_timecode};

/// JACK's sample rate and period in these tests.
const SAMPLE_RATE: i64 = jack::SAMPLE_RATE as i64;
const PERIOD: i64 = jack::PERIOD as i64;

/// Sends one OSC message to serve's control port (loopback; the ack is not read).
fn transport(port: u16, address: &str, args: Vec<rosc::OscType>) {
    let packet = rosc::OscPacket::Message(rosc::OscMessage { addr: address.to_owned(), args });
    let bytes = rosc::encoder::encode(&packet).expect("encode");
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket.send_to(&bytes, ("127.0.0.1", port)).expect("send");
}

/// One MTC message as mido read it, at its JACK frame (relative to the dump's start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mtc {
    /// A full frame: the label as a frame count at 25 fps, the rate code.
    Full { at: i64, frame: i64, code: u8 },
    /// A quarter frame: mido's `frame_type` (the piece, 0-7) and `frame_value` (its nibble).
    Quarter { at: i64, piece: u8, value: u8 },
}

impl Mtc {
    fn at(self) -> i64 {
        match self {
            Self::Full { at, .. } | Self::Quarter { at, .. } => at,
        }
    }
}

/// mido parses each message (`frame hex` lines in) and prints what it read: `full FRAME hh mm ss
/// ff code` or `quarter FRAME frame_type frame_value`; anything else fails.
const MIDO_READER: &str = r#"
import sys, mido
for line in sys.stdin:
    at, data = line.split(" ", 1)
    p = mido.Parser()
    p.feed(bytes.fromhex(data.strip()))
    msgs = list(p)
    if len(msgs) != 1:
        sys.exit(f"{data}: mido read {msgs}")
    m = msgs[0]
    if m.type == "quarter_frame":
        print("quarter", at, m.frame_type, m.frame_value)
    elif m.type == "sysex" and len(m.data) == 8 and list(m.data[:4]) == [0x7F, 0x7F, 1, 1]:
        hh, mm, ss, ff = m.data[4:8]
        print("full", at, hh & 0x1F, mm, ss, ff, hh >> 5)
    else:
        sys.exit(f"{data}: not MTC: {m}")
"#;

/// Reads `jack_midi_dump -a` output (`  FRAME: hex hex ...`) with mido.
fn read_dump(dump: &str) -> Vec<Mtc> {
    let mut input = String::new();
    for line in dump.lines() {
        let Some((at, bytes)) = line.split_once(':') else { continue };
        let Ok(at) = at.trim().parse::<i64>() else { continue };
        input.push_str(&format!("{at} {}\n", bytes.split_whitespace().collect::<String>()));
    }
    let mut child = Command::new("python3")
        .args(["-c", MIDO_READER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3");
    use std::io::Write as _;
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write to mido");
    let out = child.wait_with_output().expect("mido's output");
    assert!(out.status.success(), "mido could not read the dump: {}\n{input}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|line| {
            let f: Vec<i64> = line.split(' ').skip(1).map(|x| x.parse().expect("a number")).collect();
            if line.starts_with("full") {
                let frame = ((f[1] * 60 + f[2]) * 60 + f[3]) * 25 + f[4];
                Mtc::Full { at: f[0], frame, code: f[5] as u8 }
            } else {
                Mtc::Quarter { at: f[0], piece: f[1] as u8, value: f[2] as u8 }
            }
        })
        .collect()
}

/// One stretch of playing: the full frame that began it and the quarters after it.
struct Run {
    /// The full frame's JACK frame and its label (a frame count at 25 fps).
    at: i64,
    frame: i64,
    /// The quarters: JACK frame, piece, nibble.
    quarters: Vec<(i64, u8, u8)>,
}

/// The labels the complete eight-piece sequences of `quarters` carry (frame counts at 25 fps),
/// with the index of each sequence's piece 0.
fn sequences(quarters: &[(i64, u8, u8)]) -> Vec<(usize, i64)> {
    let mut out = Vec::new();
    let start = quarters.iter().position(|q| q.1 == 0).unwrap_or(quarters.len());
    for (k, chunk) in quarters[start..].chunks_exact(8).enumerate() {
        let pieces: Vec<u8> = chunk.iter().map(|q| q.1).collect();
        assert_eq!(pieces, [0, 1, 2, 3, 4, 5, 6, 7], "pieces in order");
        let n: Vec<i64> = chunk.iter().map(|q| i64::from(q.2)).collect();
        let (ff, ss, mm) = (n[0] | n[1] << 4, n[2] | n[3] << 4, n[4] | n[5] << 4);
        let hh = n[6] | (n[7] & 1) << 4;
        assert_eq!(n[7] >> 1, 1, "rate code 1 (25 fps) in piece 7");
        out.push((start + 8 * k, ((hh * 60 + mm) * 60 + ss) * 25 + ff));
    }
    out
}

/// 25 fps, 01:00:00:00 rolling; locate to 02:00:00:00 while rolling; stop. MTC through JACK:
/// a full frame when the chase locks, at the locate and at the stop (the parked frame, once);
/// in between quarter frames in piece order whose labels run on two frames per sequence from the
/// full frame's, each at its due sample: quarter k of a stretch lies k · 480 samples (a quarter
/// of a 25 fps frame at 48 kHz) after the stretch's first, within one JACK period.
#[test]
#[ignore = "needs jackd, jack_midi_dump, jack_wait, jack_lsp (apt-get install jackd2) and mido (python3 -m pip install mido==1.3.3)"]
fn mtc_through_jack_follows_serve() {
    require_tools(&["jackd", "jack_midi_dump", "jack_wait", "jack_lsp"]);
    mido::require_mido();
    let jack = Jack::start("mtc-jack");
    let dump_name = format!("mtcdump{}", std::process::id());
    let dump_file = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{dump_name}.txt"));
    let dump = jack
        .command("jack_midi_dump")
        .args(["-a", &dump_name])
        .stdout(std::fs::File::create(&dump_file).expect("create the dump file"))
        .stderr(Stdio::null())
        .spawn()
        .expect("start jack_midi_dump");
    let mut dump = KillOnDrop(dump);
    let dump_port = format!("{dump_name}:input");
    jack.wait_for_port(&dump_port);

    let (timecode, control) = (free_port(), free_port());
    let serve = osc_timecode("mtc_jack_serve")
        .args(["serve", "--rate", "25", "--start", "01:00:00:00", "--quiet"])
        .args(["--to", &format!("127.0.0.1:{timecode}"), "--listen", &format!("127.0.0.1:{control}")])
        .spawn();
    let _serve = KillOnDrop(serve);
    let mut listen = osc_timecode("mtc_jack_listen");
    listen
        .env("JACK_DEFAULT_SERVER", &jack.name)
        .args(["listen", "--bind", &format!("127.0.0.1:{timecode}"), "--duration", "7"])
        .args(["--mtc", &format!("jack:{dump_port}")]);
    let listen = listen.spawn();
    let mut listen = KillOnDrop(listen);

    std::thread::sleep(Duration::from_millis(2500));
    transport(control, "/transport/locate", vec![rosc::OscType::String("02:00:00:00".into())]);
    std::thread::sleep(Duration::from_millis(2000));
    transport(control, "/transport/stop", vec![]);
    let until = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = listen.0.try_wait().expect("listen's status") {
            break status;
        }
        assert!(Instant::now() < until, "listen --duration 7 did not end");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "listen failed: {status}");
    // jack_midi_dump writes each message as it comes; SIGINT ends it cleanly.
    let _ = Command::new("kill").args(["-INT", &dump.0.id().to_string()]).status();
    let _ = dump.0.wait();

    let text = std::fs::read_to_string(&dump_file).expect("read the dump");
    let messages = read_dump(&text);
    assert!(!messages.is_empty(), "no MIDI message reached {dump_port}");
    assert!(messages.windows(2).all(|w| w[0].at() <= w[1].at()), "messages in time order");

    // Stretches: a full frame and the quarters after it.
    let mut runs: Vec<Run> = Vec::new();
    for m in &messages {
        match *m {
            Mtc::Full { at, frame, code } => {
                assert_eq!(code, 1, "25 fps is rate code 1");
                runs.push(Run { at, frame, quarters: Vec::new() });
            }
            Mtc::Quarter { at, piece, value } => {
                let run = runs.last_mut().expect("a full frame before the first quarter frame");
                run.quarters.push((at, piece, value));
            }
        }
    }
    let summary: Vec<(i64, usize)> = runs.iter().map(|r| (r.frame, r.quarters.len())).collect();
    assert_eq!(runs.len(), 3, "full frames at the lock, the locate and the stop: (label, quarters) {summary:?}");
    let (played, located, stopped) = (&runs[0], &runs[1], &runs[2]);
    assert!(stopped.quarters.is_empty(), "no quarter frame after the stop");

    let second = 25;
    let hour = 3600 * second;
    assert!((hour..hour + 5 * second).contains(&played.frame), "locked within 5 s of 01:00:00:00: {}", played.frame);
    assert!((2 * hour..2 * hour + 2 * second).contains(&located.frame), "located at 02:00:00:00: {}", located.frame);

    let mut worst = 0;
    for run in [played, located] {
        assert!(
            run.quarters.len() >= 4 * second as usize,
            "a second of quarter frames at least: {}",
            run.quarters.len()
        );
        // The full frame goes at the sample of the stretch's first quarter.
        assert_eq!(run.at, run.quarters[0].0, "the full frame at the first quarter's sample");
        // Its first quarter is piece 0 (even frame) or 4 (odd frame), then pieces in order.
        let first_piece = if run.frame % 2 == 0 { 0 } else { 4 };
        for (k, q) in run.quarters.iter().enumerate() {
            assert_eq!(q.1 as usize, (first_piece + k) % 8, "piece of quarter {k} after {}", run.frame);
            let due = run.quarters[0].0 + k as i64 * SAMPLE_RATE / (4 * second);
            worst = worst.max((q.0 - due).abs());
            assert!((q.0 - due).abs() <= PERIOD, "quarter {k} at {}, due at {due}: more than a period off", q.0);
        }
        // Labels: each sequence carries the frame of its piece 0, two frames a sequence, from
        // the full frame's.
        let seqs = sequences(&run.quarters);
        assert!(!seqs.is_empty());
        for (index, label) in seqs {
            assert_eq!(label, run.frame + index as i64 / 4, "sequence at quarter {index} after {}", run.frame);
        }
    }
    // The parked frame: where the locate's stretch ended (MTC frame of its last quarter, or the
    // next: the stop lands between frames).
    let last_frame = located.frame + (located.quarters.len() as i64 - 1) / 4;
    assert!(
        (last_frame - 1..=last_frame + 2).contains(&stopped.frame),
        "parked on {}, the last quarter was in frame {last_frame}",
        stopped.frame
    );
    eprintln!("MTC through JACK: worst quarter-frame offset from its due sample {worst} samples (period {PERIOD})");
}

/// `--mtc jack` with no JACK server running: exit 2, one line saying so (libjack, installed
/// with JACK, says nothing of its own).
#[test]
fn mtc_jack_without_a_server_is_one_line() {
    let port = free_port();
    let err = osc_timecode("mtc_jack_no_server")
        .env("JACK_DEFAULT_SERVER", "osc-timecode-test-no-such-server")
        .args(["listen", "--bind", &format!("127.0.0.1:{port}"), "--duration", "1", "--mtc", "jack"])
        .fails();
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("no JACK server is running (start one, e.g. jackd -d dummy)")
            || err.contains("JACK is not installed"),
        "{err}"
    );
}

/// `--mtc nosuchport`: exit 2, one line naming what is missing (no MIDI system here and in CI,
/// else no such port, listing the ports).
#[test]
fn mtc_to_a_missing_midi_port_is_one_line() {
    let port = free_port();
    let err = osc_timecode("mtc_no_port")
        .args(["listen", "--bind", &format!("127.0.0.1:{port}"), "--duration", "1", "--mtc", "nosuchport"])
        .fails();
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains("nosuchport"), "{err}");
    assert!(err.contains("no MIDI system") || err.contains("MIDI output port"), "{err}");
}
