//! The stage client's outputs end to end (issue 17): `serve` is the master; two `listen`s chase
//! it and re-generate LTC into Broadcast Wave files and Art-Net to a loopback port; the test
//! locates, stops and restarts the master, then kills it (freewheel, then lost). What they
//! produced is read by code nobody here wrote: libltc decodes every LTC word
//! (`core/tests/interop/libltc.rs`), Python's `struct` the file's chunks (`util/bwf.rs`),
//! `artnet_protocol` every ArtTimeCode packet. The truth is the master's own stream, captured
//! from a third target: every frame's label and the instant it is heard (its timetag).
//!
//! The files are written as a device would play them: stream sample `k` plays at `t0 + k/sr`,
//! `t0` unknown to the test. So every word's `t0` is computed back from the master frame it
//! carries (the frame's heard time minus the word's position): all of them must agree, across
//! the locate and the restart, to libltc's 0–2 samples of detection latency plus rounding —
//! the words start where the master's frames start, on one clock, to the sample.

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use artnet_protocol::{ArtCommand, FrameType};
use osc_timecode_core::chase::unix_nanos;
use osc_timecode_core::protocol::{TimecodeMessage, decode_timecode_packet, system_time_from_timetag};
use osc_timecode_core::timecode::frame_start_sample;
use osc_timecode_core::{FrameRate, Timecode};

mod util;

#[path = "util/bwf.rs"]
mod bwf;

#[path = "../../core/tests/interop/libltc.rs"]
#[allow(dead_code, reason = "the reader's level and byte fields are for other tests")]
mod libltc;

const NANOS: i128 = 1_000_000_000;
const RATE: FrameRate = FrameRate::FPS_29_97_DF;
const SAMPLE_RATE: u32 = 48_000;
/// `listen`'s default `--freewheel-frames`.
const FREEWHEEL_FRAMES: usize = 10;

/// What a UDP port received: `(arrival ns since the epoch, bytes)`, by a thread until `done`.
struct Capture {
    done: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<(i128, Vec<u8>)>>,
}

impl Capture {
    fn start(socket: UdpSocket) -> Self {
        socket.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&done);
        let thread = std::thread::spawn(move || {
            let mut got = Vec::new();
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::Relaxed) {
                if let Ok((n, _)) = socket.recv_from(&mut buf) {
                    got.push((unix_nanos(SystemTime::now()), buf[..n].to_vec()));
                }
            }
            got
        });
        Self { done, thread }
    }

    fn finish(self) -> Vec<(i128, Vec<u8>)> {
        self.done.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

fn bound() -> (UdpSocket, u16) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = s.local_addr().unwrap().port();
    (s, port)
}

/// Sends a transport command to serve (loopback is allowed by default; the ack is not read).
fn transport(port: u16, address: &str, args: Vec<rosc::OscType>) {
    let msg = rosc::OscPacket::Message(rosc::OscMessage { addr: address.into(), args });
    let bytes = rosc::encoder::encode(&msg).unwrap();
    UdpSocket::bind("127.0.0.1:0").unwrap().send_to(&bytes, ("127.0.0.1", port)).unwrap();
}

fn label(frame: i64) -> String {
    Timecode::from_frame(frame, RATE).label().to_string()
}

/// The master as captured: its playing frames in order with their heard instants, and the
/// stretches it was stopped (from the stop's heard instant to the next playing frame's).
struct Master {
    played: Vec<(i64, i128)>,
    /// Indexes into `played` where a new stretch begins (after a locate or a stop).
    breaks: Vec<usize>,
    stopped: Vec<(i128, i128, i64)>,
}

fn master(stream: &[(i128, Vec<u8>)]) -> Master {
    let mut m = Master { played: Vec::new(), breaks: vec![0], stopped: Vec::new() };
    let mut stop: Option<(i128, i64)> = None;
    for (_, bytes) in stream {
        let (tag, msg): (_, TimecodeMessage) = decode_timecode_packet(bytes).expect("serve's packets decode");
        let heard = unix_nanos(system_time_from_timetag(tag.expect("bundled, timetagged")));
        if !msg.playing {
            stop.get_or_insert((heard, msg.frame));
            continue;
        }
        if let Some((from, parked)) = stop.take() {
            m.stopped.push((from, heard, parked));
            m.breaks.push(m.played.len());
        } else if m.played.last().is_some_and(|(f, _)| *f + 1 != msg.frame) {
            m.breaks.push(m.played.len());
        }
        m.played.push((msg.frame, heard));
    }
    m
}

/// One listen's LTC file, decoded and placed on the master's clock.
struct Ltc {
    decoded: Vec<libltc::Decoded>,
    samples: Vec<f32>,
    time_reference: u64,
    /// The file's sample 0 on the master's clock, ns, from the words that carry master frames.
    t0: i128,
}

/// Each word's master frame: the words in order along the master's frames in order (a label
/// may come twice: the frame a stop parks on plays again after it). `None` for a word that is
/// no frame the master played next (the freewheel) or whose label is in `skip`.
fn match_words(decoded: &[libltc::Decoded], m: &Master, skip: &[String]) -> Vec<Option<usize>> {
    let labels: Vec<String> = m.played.iter().map(|&(f, _)| label(f)).collect();
    let mut at = 0;
    decoded
        .iter()
        .map(|d| {
            if skip.contains(&d.label) {
                return None;
            }
            let i = at + labels[at..].iter().take(16).position(|l| *l == d.label)?;
            at = i + 1;
            Some(i)
        })
        .collect()
}

fn read_ltc(path: &std::path::Path, m: &Master, parked: &[String], what: &str) -> Ltc {
    let (format, channels, sample_rate, bits, time_reference, samples) = bwf::read_back(path);
    assert_eq!((format, channels, sample_rate, bits), (3, 1, SAMPLE_RATE, 32), "{what}: mono float at the rate asked");
    let decoded = libltc::decode(&samples, SAMPLE_RATE, RATE, what);
    assert!(decoded.len() > 100, "{what}: libltc read {} words", decoded.len());
    // Every word that carries a frame the master played, its t0 computed back; but for the first
    // word of each stretch (after the lock, a locate, a restart): when the listen learns of the
    // new timeline just after that frame started, its word starts on the render boundary,
    // shortened by up to half a bit (outputs/ltc.rs: rather than a frame later), and is checked
    // against that below.
    let matched = match_words(&decoded, m, parked);
    let mut firsts = Vec::new();
    let mut prev: Option<usize> = None;
    let t0s: Vec<i128> = decoded
        .iter()
        .zip(&matched)
        .filter_map(|(d, i)| {
            let i = (*i)?;
            let t0 = m.played[i].1 - i128::from(d.off_start) * NANOS / i128::from(SAMPLE_RATE);
            let first = prev.is_none_or(|p| p + 1 != i);
            prev = Some(i);
            if first {
                firsts.push(t0);
                None
            } else {
                Some(t0)
            }
        })
        .collect();
    let (lo, hi) = (*t0s.iter().min().unwrap(), *t0s.iter().max().unwrap());
    let sample_ns = NANOS / i128::from(SAMPLE_RATE);
    // libltc's 0-2 samples late, the word start's rounding (half a sample) each way: 3 samples.
    assert!(
        hi - lo <= 3 * sample_ns + 1000,
        "{what}: the words do not all start where the master's frames start: t0 spread {} ns over {} words",
        hi - lo,
        t0s.len()
    );
    // The file says when its sample 0 plays: the words agree with it, so they start where the
    // master's frames start on the wall clock itself, not only on a clock of their own.
    let said = bwf::description(path);
    let t0: i128 = said
        .strip_prefix("LTC from osc-timecode; sample 0 plays at ")
        .and_then(|s| s.strip_suffix(" ns since the Unix epoch"))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{what}: the bext Description names sample 0's time: {said:?}"));
    // Each word is read (t0 − its t0) after its frame's start there: libltc's 0–2 samples late,
    // half a sample of rounding either way.
    assert!(
        t0 - hi >= -sample_ns / 2 - 1000 && t0 - lo <= 5 * sample_ns / 2 + 1000,
        "{what}: the words are read {} to {} ns after the master's frames start on the file's own clock",
        t0 - hi,
        t0 - lo
    );
    // A first word starts at most half a bit late (a 29.97 DF word is 1601.6 samples, 80 bits).
    let half_bit = 1602 * sample_ns / 160;
    for first in firsts {
        assert!(
            (t0 - first) >= -sample_ns / 2 - 1000 && t0 - first <= half_bit + 5 * sample_ns / 2 + 1000,
            "{what}: a stretch's first word is read {} ns after its frame starts",
            t0 - first
        );
    }
    Ltc { decoded, samples, time_reference, t0 }
}

impl Ltc {
    /// When a word's first sample plays on the master's clock.
    fn at(&self, d: &libltc::Decoded) -> i128 {
        self.t0 + i128::from(d.off_start) * NANOS / i128::from(SAMPLE_RATE)
    }
}

/// The labels the file carries while the master played: every master frame from the first word
/// on, in order, but for the word each break may cost libltc (the one cut by it) and the first
/// after it; then the freewheel: at most `FREEWHEEL_FRAMES` frames continuing the last one.
fn check_sequence(ltc: &Ltc, m: &Master, parked: &[String], freewheel: bool, what: &str) {
    let playing: Vec<&libltc::Decoded> = ltc.decoded.iter().filter(|d| !parked.contains(&d.label)).collect();
    let labels: Vec<String> = m.played.iter().map(|&(f, _)| label(f)).collect();
    let first = labels.iter().position(|l| *l == playing[0].label).expect("the first word is a master frame");
    assert!(first <= 6, "{what}: LTC begins once listen locks (3 frames), not {first} frames in");
    let mut at = first;
    let mut tail = 0;
    let (&(last_frame, _), mut last_seen) = (m.played.last().unwrap(), None::<i64>);
    for d in &playing {
        match labels[at..].iter().position(|l| *l == d.label) {
            Some(skip) => {
                let skipped = at..at + skip;
                // A skipped frame must sit at a break (the word it cuts, the first after it).
                for i in skipped {
                    assert!(
                        m.breaks.iter().any(|&b| b > 0 && (b.saturating_sub(2)..=b + 1).contains(&i)),
                        "{what}: the master's frame {} ({}) is missing from the LTC",
                        m.played[i].0,
                        labels[i]
                    );
                }
                at += skip + 1;
            }
            None => {
                // Past the master's last frame: the freewheel, continuing it.
                let expected = last_seen.map_or(last_frame + 1, |f| f + 1);
                assert_eq!(
                    d.label,
                    label(expected),
                    "{what}: after the master's last frame, the freewheel continues it"
                );
                last_seen = Some(expected);
                tail += 1;
            }
        }
    }
    assert!(at >= labels.len() - 1, "{what}: the master's frames end at {} of {}", at, labels.len());
    if freewheel {
        assert!(
            (1..=FREEWHEEL_FRAMES + 2).contains(&tail),
            "{what}: {tail} freewheel words after the master went away"
        );
    } else {
        assert_eq!(tail, 0, "{what}: no word after the master stopped");
    }
    // Lost or stopped: silence from shortly after the last word to the end of the file.
    let word = (i64::from(SAMPLE_RATE) * i64::from(RATE.den()) / i64::from(RATE.num())) as usize;
    let end = usize::try_from(playing.last().unwrap().off_start).unwrap() + 2 * word;
    assert!(ltc.samples.len() > end + SAMPLE_RATE as usize / 2, "{what}: the file runs on after the master's end");
    assert!(ltc.samples[end..].iter().all(|s| *s == 0.0), "{what}: silence once the master stopped or is lost");
}

/// The bext TimeReference is the first sample's timecode position: each word of the first
/// stretch sits at its label's position in the day, counted from it.
fn check_time_reference(ltc: &Ltc, m: &Master, parked: &[String], what: &str) {
    let end = m.breaks.get(1).copied().unwrap_or(m.played.len());
    let mut checked = 0;
    for (d, i) in ltc.decoded.iter().zip(match_words(&ltc.decoded, m, parked)) {
        let Some(i) = i.filter(|&i| i < end) else { continue };
        let frame = m.played[i].0;
        let in_day = frame_start_sample(frame.rem_euclid(RATE.frames_per_day()), SAMPLE_RATE, RATE);
        let off = i128::from(ltc.time_reference) + i128::from(d.off_start) - i128::from(in_day);
        assert!((-1..=3).contains(&off), "{what}: {} read {off} samples from TimeReference + its position", d.label);
        checked += 1;
    }
    assert!(checked > 30, "{what}: {checked} words of the first stretch");
}

#[test]
#[ignore = "needs libltc: apt-get install libltc11"]
fn listen_regenerates_ltc_and_artnet_from_serve_across_a_locate_a_stop_and_the_master_going_away() {
    libltc::require_libltc();
    let (capture, capture_port) = bound();
    let (artnet, artnet_port) = bound();
    let (a_port, b_port, cues) = (util::free_port(), util::free_port(), util::free_port());
    let master_stream = Capture::start(capture);
    let artnet_stream = Capture::start(artnet);
    let mut a = util::osc_timecode("outputs-a");
    let wav_a = a.dir().join("a.wav");
    let mut listen_a = a
        .args(["listen", "--bind", &format!("127.0.0.1:{a_port}"), "--duration", "11"])
        .args(["--ltc", &format!("wav:{}", wav_a.display())])
        .spawn();
    let mut b = util::osc_timecode("outputs-b");
    let wav_b = b.dir().join("b.wav");
    // B is a stage machine set up once: its config file runs the rig, no flags but the length.
    let mut listen_b = b
        .write_config(&format!(
            "[client]\nlisten = \"127.0.0.1:{b_port}\"\n[client.outputs]\nltc = \"wav:{}\"\nltc_stopped = \"still\"\n\
             artnet = [\"127.0.0.1:{artnet_port}\"]\nartnet_stream_id = 7\n",
            wav_b.display()
        ))
        .args(["listen", "--duration", "11"])
        .spawn();
    let streams_a = util::Streams::take(&mut listen_a);
    let streams_b = util::Streams::take(&mut listen_b);
    std::thread::sleep(Duration::from_millis(300));
    let mut serve = util::osc_timecode("outputs-serve")
        .args(["serve", "--rate", "29.97df", "--start", "00:00:58;00", "--quiet"])
        .args(["--listen", &format!("127.0.0.1:{cues}")])
        .args(["--to", &format!("127.0.0.1:{a_port}"), "--to", &format!("127.0.0.1:{b_port}")])
        .args(["--to", &format!("127.0.0.1:{capture_port}")])
        .spawn();
    // Across 00:01:00;02 (two labels dropped), then a locate, a stop, a restart, the end.
    std::thread::sleep(Duration::from_millis(3000));
    transport(cues, "/transport/locate", vec![rosc::OscType::String("00:10:00;00".into())]);
    std::thread::sleep(Duration::from_millis(2000));
    transport(cues, "/transport/stop", vec![]);
    std::thread::sleep(Duration::from_millis(1500));
    transport(cues, "/transport/play", vec![]);
    std::thread::sleep(Duration::from_millis(1500));
    serve.kill().unwrap();
    let _ = serve.wait();
    let (status_a, status_b) = (listen_a.wait().unwrap(), listen_b.wait().unwrap());
    let m = master(&master_stream.finish());
    let art = artnet_stream.finish();
    let (err_a, err_b) = (streams_a.stderr(), streams_b.stderr());
    assert!(status_a.success() && status_b.success(), "listen ended badly:\n{err_a}\n{err_b}");
    assert_eq!(m.breaks.len(), 3, "the master's stretches: start, locate, restart ({:?})", m.breaks);
    assert_eq!(m.stopped.len(), 1, "one stop");
    for (err, what) in [(&err_a, "listen A"), (&err_b, "listen B")] {
        assert!(err.contains("the master is lost"), "{what} says when the outputs stop: {err}");
        assert!(!err.contains("panicked"), "{what}: {err}");
    }

    // A: silence while stopped.
    let ltc_a = read_ltc(&wav_a, &m, &[], "listen A's LTC");
    check_sequence(&ltc_a, &m, &[], true, "listen A's LTC");
    check_time_reference(&ltc_a, &m, &[], "listen A's LTC");
    let (from, to, _) = m.stopped[0];
    let frame = NANOS * i128::from(RATE.den()) / i128::from(RATE.num());
    let inside: Vec<&String> =
        ltc_a.decoded.iter().filter(|d| (from + frame..to - frame).contains(&ltc_a.at(d))).map(|d| &d.label).collect();
    assert!(inside.is_empty(), "listen A's LTC is silent while the master is stopped: {inside:?}");

    // B: the parked frame's word while stopped, the rest as A.
    let parked = label(m.stopped[0].2);
    let ltc_b = read_ltc(&wav_b, &m, std::slice::from_ref(&parked), "listen B's LTC");
    let still = ltc_b.decoded.iter().filter(|d| (from + frame..to - frame).contains(&ltc_b.at(d))).collect::<Vec<_>>();
    let stopped_frames = usize::try_from((to - from) / frame).unwrap();
    assert!(still.len() + 4 >= stopped_frames, "listen B repeats the parked word: {} of {stopped_frames}", still.len());
    assert!(still.iter().all(|d| d.label == parked), "listen B's still word is the parked frame {parked}");
    check_sequence(&ltc_b, &m, std::slice::from_ref(&parked), true, "listen B's LTC");
    check_time_reference(&ltc_b, &m, std::slice::from_ref(&parked), "listen B's LTC");

    // B's Art-Net, read by artnet_protocol: stream 7, drop-frame, the master's frames in order,
    // none before its frame is heard; the parked frame while stopped; nothing once lost.
    let art_label = |f: i64| {
        let tc = Timecode::from_frame(f, RATE);
        (tc.hours(), tc.minutes(), tc.seconds(), tc.frames())
    };
    let labels: Vec<(u8, u8, u8, u8)> = m.played.iter().map(|&(f, _)| art_label(f)).collect();
    let tc = Timecode::from_frame(m.stopped[0].2, RATE);
    let parked_label = (tc.hours(), tc.minutes(), tc.seconds(), tc.frames());
    let (mut last, mut frames, mut keepalives, mut tail) = (None::<usize>, 0, 0, 0);
    for (arrival, bytes) in &art {
        let Ok(ArtCommand::OpTimeCode(p)) = ArtCommand::from_buffer(bytes) else {
            panic!("artnet_protocol could not read {bytes:02x?} as an ArtTimeCode");
        };
        assert_eq!((p.version, p.stream_id), ([0, 14], 7), "ProtVer 14, StreamId 7");
        assert!(matches!(p.frame_type, FrameType::DF), "29.97 DF goes as Type DF, not {:?}", p.frame_type);
        let l = (p.hours, p.minutes, p.seconds, p.frames);
        if (from..to).contains(arrival) && l == parked_label {
            keepalives += 1;
            continue;
        }
        // In order along the master's frames (the parked frame plays before the stop and after).
        let from_index = last.map_or(0, |j| j + 1);
        match labels[from_index..].iter().take(16).position(|x| *x == l).map(|k| from_index + k) {
            Some(i) => {
                let at = m.played[i].1;
                assert!(*arrival >= at, "Art-Net {l:?} arrived {} µs before its frame is heard", (at - arrival) / 1000);
                assert!(last.is_none_or(|j| i > j), "Art-Net labels go forward: {l:?}");
                if let Some(j) = last {
                    for k in j + 1..i {
                        assert!(
                            m.breaks.iter().any(|&b| (b.saturating_sub(2)..=b + 1).contains(&k)),
                            "Art-Net is missing the master's frame {} (index {k}, breaks {:?}, stopped {:?})",
                            label(m.played[k].0),
                            m.breaks,
                            m.stopped
                        );
                    }
                }
                last = Some(i);
                frames += 1;
            }
            None => tail += 1,
        }
    }
    assert!(frames + 20 >= m.played.len(), "Art-Net carried {frames} of the master's {} frames", m.played.len());
    assert!(keepalives >= 1, "Art-Net sends the parked frame while stopped");
    assert!(tail <= FREEWHEEL_FRAMES + 2, "Art-Net: {tail} freewheel packets, then nothing once lost");
}

/// Reads ArtTimeCode packets with artnet_protocol: (label, Type).
fn artnet_labels(got: &[(i128, Vec<u8>)]) -> Vec<((u8, u8, u8, u8), FrameType)> {
    got.iter()
        .map(|(_, bytes)| match ArtCommand::from_buffer(bytes) {
            Ok(ArtCommand::OpTimeCode(p)) => ((p.hours, p.minutes, p.seconds, p.frames), p.frame_type),
            other => panic!("artnet_protocol read {other:?}, not an ArtTimeCode"),
        })
        .collect()
}

/// 50 fps is refused loudly wherever the rate is known: `serve` exits with one line naming
/// `--half-rate`; with it, Art-Net carries frame pairs as 25 fps (one packet per pair, Type EBU).
#[test]
fn a_rate_an_output_cannot_carry_is_refused_and_half_rate_carries_it_as_pairs() {
    let (socket, port) = bound();
    let target = format!("127.0.0.1:{port}");
    let cues = format!("127.0.0.1:{}", util::free_port());
    let line = util::osc_timecode("refuse-50")
        .args(["serve", "--rate", "50", "--listen", &cues, "--to", "127.0.0.1:9", "--artnet", &target])
        .fails();
    assert!(line.contains("50 fps") && line.contains("--half-rate"), "{line}");
    let line = util::osc_timecode("refuse-50-config")
        .write_config("[client.outputs]\nartnet = [\"127.0.0.1:9\"]\n")
        .args(["serve", "--rate", "60", "--listen", &cues, "--to", "127.0.0.1:9"])
        .fails();
    assert!(line.contains("60 fps") && line.contains("--half-rate"), "the config file's outputs too: {line}");

    let got = Capture::start(socket);
    let mut serve = util::osc_timecode("half-rate-50")
        .args(["serve", "--rate", "50", "--start", "00:00:10:00", "--quiet", "--listen", &cues, "--to", "127.0.0.1:9"])
        .args(["--artnet", &target, "--half-rate"])
        .spawn();
    std::thread::sleep(Duration::from_millis(1500));
    serve.kill().unwrap();
    let _ = serve.wait();
    let labels = artnet_labels(&got.finish());
    assert!(labels.len() >= 20, "about 25 packets a second: {}", labels.len());
    for pair in labels.windows(2) {
        let ((h0, m0, s0, f0), _) = pair[0];
        let ((h1, m1, s1, f1), t) = pair[1];
        assert!(matches!(t, FrameType::EBU), "frame pairs of 50 fps go as Type EBU (25), not {t:?}");
        let next = if f0 == 24 { (h0, m0, s0 + 1, 0) } else { (h0, m0, s0, f0 + 1) };
        assert_eq!((h1, m1, s1, f1), next, "one packet per frame pair, labels 0-24");
    }
}

/// `listen` cannot know the master's rate before it hears it: a rate its outputs cannot carry is
/// one line naming the output and `--half-rate`, the output silent, listen itself going on.
#[test]
fn listen_says_once_when_the_master_s_rate_cannot_be_carried() {
    let (socket, port) = bound();
    let (listen_port, cues) = (util::free_port(), util::free_port());
    let got = Capture::start(socket);
    let mut listen = util::osc_timecode("listen-refuses-60")
        .args(["listen", "--bind", &format!("127.0.0.1:{listen_port}"), "--duration", "2", "--json"])
        .args(["--artnet", &format!("127.0.0.1:{port}")])
        .spawn();
    let streams = util::Streams::take(&mut listen);
    let mut serve = util::osc_timecode("listen-refuses-60-serve")
        .args(["serve", "--rate", "60", "--quiet", "--listen", &format!("127.0.0.1:{cues}")])
        .args(["--to", &format!("127.0.0.1:{listen_port}")])
        .spawn();
    let status = listen.wait().unwrap();
    serve.kill().unwrap();
    let _ = serve.wait();
    assert!(status.success(), "listen goes on: {}", streams.stderr());
    let stdout: Vec<String> = streams.stdout.try_iter().collect();
    assert!(stdout.iter().any(|l| l.contains("\"locked\"")), "listen chased the 60 fps master: {stdout:?}");
    let err = streams.stderr();
    let refusals: Vec<&str> = err.lines().filter(|l| l.contains("cannot carry")).collect();
    assert_eq!(refusals.len(), 1, "said once: {err}");
    assert!(
        refusals[0].contains(&format!("Art-Net to 127.0.0.1:{port}")) && refusals[0].contains("--half-rate"),
        "{err}"
    );
    assert!(got.finish().is_empty(), "nothing sent at a rate refused");
}

/// Outputs that cannot start are one line and exit status 2, before anything runs: a file that
/// cannot be created, an IPv6 Art-Net target, a level out of range, from the flags or the file.
#[test]
fn outputs_that_cannot_start_are_one_line() {
    let bind = format!("127.0.0.1:{}", util::free_port());
    let mut cmd = util::osc_timecode("ltc-no-dir");
    let missing = cmd.dir().join("no/such/dir/ltc.wav");
    let line = cmd.args(["listen", "--bind", &bind, "--ltc", &format!("wav:{}", missing.display())]).fails();
    assert!(line.contains("could not create the LTC file"), "{line}");
    let line = util::osc_timecode("artnet-v6").args(["listen", "--bind", &bind, "--artnet", "[::1]:6454"]).fails();
    assert!(line.contains("IPv4 only"), "{line}");
    let line = util::osc_timecode("ltc-level").args(["listen", "--ltc", "wav:x.wav", "--ltc-level-dbfs", "3"]).fails();
    assert!(line.contains("-60 to 0 dBFS"), "{line}");
    let line = util::osc_timecode("ltc-level-config")
        .write_config("[client.outputs]\nltc = \"wav:x.wav\"\nltc_level_dbfs = 3\n")
        .args(["listen", "--bind", &bind])
        .fails();
    assert!(line.contains("-60 to 0 dBFS") && line.contains("config file"), "the same words from the file: {line}");
    let line = util::osc_timecode("artnet-twice")
        .args(["listen", "--bind", &bind, "--artnet", "127.0.0.1", "--artnet", "127.0.0.1:6454"])
        .fails();
    assert!(line.contains("listed twice"), "{line}");
}

/// A loop, which `serve` cannot play: a master of the test's own sends 29.97 DF frames, each
/// timetagged with when it is heard and sent 20 ms before, loops from frame 130 back to frame 60
/// (jump and loop flags) twice, then stops. The LTC file holds the master's frames in the
/// master's order across both wraps, each word where its frame starts on the file's own clock,
/// and silence once stopped.
#[test]
#[ignore = "needs libltc: apt-get install libltc11"]
fn ltc_follows_a_loop_word_for_word() {
    use osc_timecode_core::protocol::{encode_timecode_bundle, timetag_from_system_time};
    libltc::require_libltc();
    let port = util::free_port();
    let mut cmd = util::osc_timecode("outputs-loop");
    let wav = cmd.dir().join("loop.wav");
    let mut listen = cmd
        .args(["listen", "--bind", &format!("127.0.0.1:{port}"), "--duration", "10"])
        .args(["--ltc", &format!("wav:{}", wav.display())])
        .spawn();
    let streams = util::Streams::take(&mut listen);
    std::thread::sleep(Duration::from_millis(300));
    let frame = NANOS * i128::from(RATE.den()) / i128::from(RATE.num());
    let first = 107_892i64; // 01:00:00;00
    let t_a = unix_nanos(SystemTime::now()) + 200_000_000;
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut m = Master { played: Vec::new(), breaks: vec![0], stopped: Vec::new() };
    let (mut buf, mut seq) = (Vec::new(), 0i64);
    let mut send = |f: i64, heard: i128, playing: bool, jump: bool, looped: bool| {
        let msg = TimecodeMessage::new(f, RATE, playing, seq, jump, looped);
        seq += 1;
        let at = heard - 20_000_000;
        let wait = at - unix_nanos(SystemTime::now());
        if wait > 0 {
            std::thread::sleep(Duration::from_nanos(wait as u64));
        }
        let tag = timetag_from_system_time(SystemTime::UNIX_EPOCH + Duration::from_nanos(heard as u64));
        encode_timecode_bundle(&msg, tag, &mut buf);
        socket.send_to(&buf, ("127.0.0.1", port)).unwrap();
    };
    let mut slot = 0i128;
    let mut play = |m: &mut Master, from: i64, to: i64, send: &mut dyn FnMut(i64, i128, bool, bool, bool)| {
        let wrap = !m.played.is_empty();
        if wrap {
            m.breaks.push(m.played.len());
        }
        for (k, f) in (from..to).enumerate() {
            let heard = t_a + slot * frame;
            send(f, heard, true, wrap && k == 0, wrap && k == 0);
            m.played.push((f, heard));
            slot += 1;
        }
    };
    play(&mut m, first, first + 130, &mut send);
    play(&mut m, first + 60, first + 130, &mut send);
    play(&mut m, first + 60, first + 100, &mut send);
    let stop = t_a + slot * frame;
    send(first + 100, stop, false, false, false);
    m.stopped.push((stop, stop + 10 * NANOS, first + 100));
    let status = listen.wait().unwrap();
    assert!(status.success(), "{}", streams.stderr());
    let ltc = read_ltc(&wav, &m, &[], "LTC across two loop wraps");
    check_sequence(&ltc, &m, &[], false, "LTC across two loop wraps");
    check_time_reference(&ltc, &m, &[], "LTC across two loop wraps");
    let wraps =
        ltc.decoded.windows(2).filter(|w| w[1].label == label(first + 60) && w[0].label == label(first + 129)).count();
    assert_eq!(wraps, 2, "libltc reads both wraps, frame to frame");
}
