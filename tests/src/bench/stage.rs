//! Section 10, the stage client's outputs behind a jittery network (issue 17):
//! `osc-timecode serve --rate 25` → the section-5 relay (each datagram delayed by a uniform
//! random 0–5 ms) → `osc-timecode listen --ltc wav:FILE --artnet 127.0.0.1:PORT --mtc
//! jack:PORT`, which re-generates LTC, Art-Net and MTC from its chase. Truth is serve's
//! schedule: each frame's timetag.
//!
//! - LTC word start error: x42's libltc finds every word in the file (not our decoder); the
//!   word's first sample is then located exactly in the samples (the edge nearest libltc's
//!   `off_start`: libltc reports 0–2 samples late); the file's sample 0 plays at the instant its
//!   bext Description names, so the word's start is an instant on the wall clock, compared with
//!   the true start of the frame its label names, in samples at 48 kHz.
//! - Art-Net departure error: each packet's kernel receive time (`SO_TIMESTAMPNS`, section 9)
//!   minus the true start of the frame it carries (artnet_protocol reads the label).
//! - MTC departure error: a private JACK server (`jackd -n osc-tc-bench -d dummy`, 48 kHz,
//!   256-frame periods) carries listen's MIDI port to an independent recorder
//!   (`tests/bench/mtc_jack_record.py`: JACK-Client's process callback takes each event's frame,
//!   libjack's `jack_frames_to_time` puts it on JACK's clock, a measured offset on the wall
//!   clock; mido parses the bytes). Quarter `q` of our frame `m` is due at `start(m) + q · 10
//!   ms`; each recorded quarter is matched to the due time nearest it, and its piece and nibble
//!   must be those of that quarter (piece `4 · (m mod 2) + q` of the sequence carrying the even
//!   frame `m − (m mod 2)`, core's `MtcFormat::quarter_message`, re-derived here): disagreements
//!   are counted, not measured. Without jackd (or the Python packages) the MTC rows say
//!   "skipped" and the rest runs.
//! - The baseline, in the same run: a receiver that emits each frame when its datagram arrives
//!   (the relay's forward instant minus the true frame start), in samples for LTC and in ms for
//!   Art-Net and MTC (one number for both: a quarter frame sent on arrival leaves when the
//!   datagram is forwarded, as an Art-Net packet would).

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, bail};
use osc_timecode_core::{FrameRate, Timecode};

use super::artnet::{StampedReceiver, artnet_label};
use super::audio::libltc;
use super::lock::{Relay, SEED};
use super::stats::{Summary, cell, num, ratio};
use super::{Ctx, KillOnDrop, Section, Target, signed_secs_wall};
use crate::bundle::workspace_root;
use crate::cues::free_loopback_addr;

/// The rate served.
const RATE: FrameRate = FrameRate::FPS_25;
/// The LTC file's sample rate.
const SR: u32 = 48_000;
/// Issue 17's target for the LTC word start error, p99, samples at 48 kHz.
const TARGET_LTC_P99_SAMPLES: f64 = 1.0;
/// Issue 17's target for the Art-Net departure error, p99, ms.
const TARGET_ARTNET_P99_MS: f64 = 0.5;
/// Issue 17's target for the MTC departure error, p99, ms.
const TARGET_MTC_P99_MS: f64 = 0.5;
/// A quarter of a 25 fps frame, ns: quarter `q` of a frame is due `q` of these after its start.
const QUARTER_NS: i128 = 10_000_000;
/// The bench's JACK server, under a fixed name: JACK's registry holds 8 servers, and the entry
/// of one that died is reclaimed only by a server of the same name.
const JACK_SERVER: &str = "osc-tc-bench";
/// The JACK server's period, frames (5.3 ms at 48 kHz).
const JACK_PERIOD: u32 = 256;
/// The recorder's JACK client name.
const RECORDER: &str = "osc-tc-bench-mtc";
/// How to get JACK.
const JACK_INSTALL: &str = "apt-get install jackd2";
/// How to get the recorder's Python packages.
const RECORDER_INSTALL: &str = "python3 -m pip install JACK-Client==0.5.7 mido==1.3.3";
/// What the file's bext Description says before sample 0's instant (`outputs::wav`).
const DESCRIPTION_PREFIX: &str = "LTC from osc-timecode; sample 0 plays at ";

/// What one run measured.
struct Measured {
    /// LTC word start − true frame start, samples, per word.
    ltc_samples: Vec<f64>,
    /// Art-Net receive − true frame start, ms, per packet.
    artnet_ms: Vec<f64>,
    /// Relay forward − true frame start, ms, per datagram (the emit-on-arrival baseline).
    arrival_ms: Vec<f64>,
    /// Master frames played while listen ran.
    frames: usize,
    /// MTC through JACK.
    mtc: MtcOutcome,
}

/// Runs section 10.
pub fn run(ctx: &Ctx) -> Section {
    let seconds = if ctx.quick { 5.0 } else { 60.0 };
    eprintln!("[bench] stage outputs: {seconds} s of LTC, Art-Net and MTC behind a 0–5 ms jitter relay");
    let mut body = format!(
        "`osc-timecode serve --rate 25` → relay (each datagram delayed by a uniform random 0–5 ms, seed {SEED:#x}, as \
         in section 5) → `osc-timecode listen --ltc wav:FILE --artnet 127.0.0.1:PORT --mtc jack:PORT` for {seconds} s. Truth is \
         serve's schedule (its timetags). LTC: libltc finds each word, its first sample is located in the file (the \
         edge nearest libltc's report), placed on the wall clock by the instant the file's bext Description gives for \
         sample 0, and compared with the true start of its frame. Art-Net: the kernel's receive time of each packet \
         (`SO_TIMESTAMPNS`) minus the true start of its frame. MTC: each quarter frame as JACK places it, against its true due time \
         (below). Baseline, same run: emit on arrival (the relay's \
         forward instant minus the true frame start). Absolute values, p50 / p99 / max.\n\n"
    );
    let mut targets = Vec::new();
    let mut headline = Vec::new();
    let mut findings = Vec::new();
    match measure(ctx, seconds) {
        Ok(m) => {
            let ltc = Summary::of_abs(&m.ltc_samples);
            let art = Summary::of_abs(&m.artnet_ms);
            let arrival = Summary::of_abs(&m.arrival_ms);
            let arrival_samples = arrival.map(|a| a.scaled(f64::from(SR) / 1e3));
            body.push_str("| measure | p50 / p99 / max | n |\n|---|---|---|\n");
            body.push_str(&format!(
                "| LTC word start − true frame start, samples at 48 kHz | {} | {} words of {} frames |\n",
                cell(ltc),
                m.ltc_samples.len(),
                m.frames
            ));
            body.push_str(&format!(
                "| baseline, LTC word started on arrival, samples | {} | {} datagrams |\n",
                cell(arrival_samples),
                m.arrival_ms.len()
            ));
            body.push_str(&format!(
                "| Art-Net received − true frame start, ms | {} | {} packets |\n",
                cell(art),
                m.artnet_ms.len()
            ));
            body.push_str(&format!(
                "| baseline, Art-Net sent on arrival, ms | {} | {} datagrams |\n",
                cell(arrival),
                m.arrival_ms.len()
            ));
            let mtc = match &m.mtc {
                MtcOutcome::Measured(x) => Summary::of_abs(&x.error_ms),
                _ => None,
            };
            match &m.mtc {
                MtcOutcome::Measured(x) => body.push_str(&format!(
                    "| MTC quarter frame (JACK) − its true due time, ms | {} | {} quarter frames ({} disagreeing \
                     with the quarter due nearest, {} far from any; {} full frames) |\n",
                    cell(mtc),
                    x.error_ms.len(),
                    x.mismatched,
                    x.unmatched,
                    x.full_frames
                )),
                MtcOutcome::Skipped(why) | MtcOutcome::Failed(why) => {
                    body.push_str(&format!("| MTC quarter frame (JACK) − its true due time, ms | {why} | — |\n"))
                }
            }
            body.push_str(&format!(
                "| baseline, MTC quarter frame sent on arrival, ms (the Art-Net baseline: the same instants) | {} | \
                 {} datagrams |\n\n",
                cell(arrival),
                m.arrival_ms.len()
            ));
            body.push_str(
                "Each output computes from the chase, not from arrivals: LTC samples from the stream's own clock \
                 (sample k plays at t0 + k/48000), Art-Net at absolute deadlines (sleep, then spin the last 0.3 ms). \
                 Network jitter reaches neither; what is left is rounding to a sample (LTC) and the wake-up and the \
                 loopback send (Art-Net).\n\n",
            );
            body.push_str(&format!(
                "MTC goes through a private JACK server (`jackd -n {JACK_SERVER} -d dummy`, {SR} Hz, {JACK_PERIOD}-frame \
                 periods) to an independent recorder (`tests/bench/mtc_jack_record.py`: JACK-Client; each event's frame \
                 put on JACK's clock by libjack's `jack_frames_to_time`, then on the wall clock by an offset measured \
                 every 100 ms; mido parses the bytes). Quarter q of frame m is due at start(m) + q · 10 ms; each \
                 recorded quarter is matched to the due time nearest it and must carry that quarter's piece and \
                 nibble (else it is counted as disagreeing, not measured). JACK's period ({JACK_PERIOD} frames at \
                 {SR} Hz, {:.1} ms) bounds when a message leaves the computer: a MIDI event goes out with its period; \
                 listen places each quarter on its sample within that period, which is the time this row measures \
                 (the time a MIDI interface's driver is given). What is left is rounding to a sample (±10.4 µs at \
                 48 kHz). listen (`jack_get_cycle_times`) and the recorder (`jack_frames_to_time`) both read JACK's \
                 own mapping of frames to time, each with its own measure of the wall clock against JACK's clock \
                 (CLOCK_MONOTONIC_RAW for jackd2 on Linux, not CLOCK_MONOTONIC): a sound card's or MIDI interface's \
                 own latency after JACK is outside this measure.\n\n",
                f64::from(JACK_PERIOD) * 1e3 / f64::from(SR)
            ));
            match &m.mtc {
                MtcOutcome::Measured(x) => {
                    if let Some(q) = mtc {
                        targets.push(Target {
                            target: format!(
                                "stage MTC departure error behind 0–5 ms jitter: p99 ≤ {TARGET_MTC_P99_MS} ms"
                            ),
                            result: format!(
                                "p50 {} / p99 {} / max {} ms over {} quarter frames, {} disagreeing \
                                 (emit-on-arrival baseline p99 {} ms)",
                                num(q.p50),
                                num(q.p99),
                                num(q.max),
                                x.error_ms.len(),
                                x.mismatched,
                                arrival.map_or("—".to_owned(), |b| num(b.p99))
                            ),
                            met: Some(q.p99 <= TARGET_MTC_P99_MS && x.mismatched == 0),
                        });
                        if q.p99 > TARGET_MTC_P99_MS {
                            findings.push(format!(
                                "listen's MTC through JACK lands p99 {} ms from its due time (target \
                                 {TARGET_MTC_P99_MS} ms): see client/src/outputs/jack.rs (mtc_in_period, the clock \
                                 offset).",
                                num(q.p99)
                            ));
                        }
                    }
                    if x.mismatched > 0 || x.unmatched > 0 {
                        findings.push(format!(
                            "{} MTC quarter frames carried another piece or value than the quarter due nearest them, \
                             {} were far from any due time (client/src/outputs/mtc.rs, jack.rs).",
                            x.mismatched, x.unmatched
                        ));
                    }
                }
                MtcOutcome::Skipped(why) => targets.push(Target {
                    target: format!("stage MTC departure error behind 0–5 ms jitter: p99 ≤ {TARGET_MTC_P99_MS} ms"),
                    result: why.clone(),
                    met: None,
                }),
                MtcOutcome::Failed(why) => targets.push(Target {
                    target: format!("stage MTC departure error behind 0–5 ms jitter: p99 ≤ {TARGET_MTC_P99_MS} ms"),
                    result: format!("failed: {why}"),
                    met: Some(false),
                }),
            }
            if let Some(l) = ltc {
                targets.push(Target {
                    target: format!(
                        "stage LTC word start error behind 0–5 ms jitter: p99 ≤ {TARGET_LTC_P99_SAMPLES} sample at 48 kHz"
                    ),
                    result: format!(
                        "p50 {} / p99 {} / max {} samples over {} words (emit-on-arrival baseline p99 {} samples)",
                        num(l.p50),
                        num(l.p99),
                        num(l.max),
                        m.ltc_samples.len(),
                        arrival_samples.map_or("—".to_owned(), |a| num(a.p99))
                    ),
                    met: Some(l.p99 <= TARGET_LTC_P99_SAMPLES),
                });
            }
            if let Some(a) = art {
                targets.push(Target {
                    target: format!(
                        "stage Art-Net departure error behind 0–5 ms jitter: p99 ≤ {TARGET_ARTNET_P99_MS} ms"
                    ),
                    result: format!(
                        "p50 {} / p99 {} / max {} ms over {} packets (emit-on-arrival baseline p99 {} ms)",
                        num(a.p50),
                        num(a.p99),
                        num(a.max),
                        m.artnet_ms.len(),
                        arrival.map_or("—".to_owned(), |b| num(b.p99))
                    ),
                    met: Some(a.p99 <= TARGET_ARTNET_P99_MS),
                });
                if a.p99 > TARGET_ARTNET_P99_MS {
                    findings.push(format!(
                        "listen's Art-Net leaves p99 {} ms after the frame start (target {TARGET_ARTNET_P99_MS} ms): \
                         the output thread woke late (client/src/outputs/artnet.rs, Timeline::sleep_until).",
                        num(a.p99)
                    ));
                }
            }
            if let (Some(l), Some(a), Some(b)) = (ltc, art, arrival) {
                headline.push(format!(
                    "stage outputs behind 0–5 ms jitter: LTC word starts p99 {} samples (on arrival: {}), Art-Net p99 \
                     {} ms (on arrival: {} ms, ratio {})",
                    num(l.p99),
                    arrival_samples.map_or("—".to_owned(), |x| num(x.p99)),
                    num(a.p99),
                    num(b.p99),
                    ratio(b.p99, a.p99)
                ));
            }
            if let (Some(q), Some(b)) = (mtc, arrival) {
                headline.push(format!(
                    "stage MTC through JACK behind 0–5 ms jitter: quarter frames p99 {} ms from due (on arrival: {} ms, \
                     ratio {})",
                    num(q.p99),
                    num(b.p99),
                    ratio(b.p99, q.p99)
                ));
            }
        }
        Err(e) => {
            body.push_str(&format!("failed: {e:#}\n\n"));
            targets.push(Target {
                target: "stage outputs measured".into(),
                result: format!("failed: {e:#}"),
                met: Some(false),
            });
        }
    }
    Section { title: "10. Stage outputs behind a jittery network".into(), body, targets, headline, findings }
}

/// Runs serve → relay → listen with LTC, Art-Net and MTC, and measures against serve's schedule.
fn measure(ctx: &Ctx, seconds: f64) -> anyhow::Result<Measured> {
    if !libltc::present() {
        bail!("libltc is not installed ({})", libltc::INSTALL);
    }
    let relay = Relay::start()?;
    let artnet = StampedReceiver::bind()?;
    let wav = ctx.scratch.join("stage-ltc.wav");
    let (cues, bind) = (free_loopback_addr(), free_loopback_addr());
    let serve = Command::new(&ctx.client)
        .args(["serve", "--rate", "25", "--quiet", "--keepalive-ms", "0"])
        .args(["--to", &relay.addr.to_string(), "--listen", &cues.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("could not start osc-timecode serve")?;
    let serve = KillOnDrop(serve);
    // The recorder first in the pair: it is dropped (killed) before the server is stopped.
    let mtc_rig: Result<(MtcRecorder, JackServer), MtcOutcome> = match mtc_missing() {
        Some(why) => Err(MtcOutcome::Skipped(why)),
        None => JackServer::start(&ctx.scratch)
            .and_then(|jack| Ok((MtcRecorder::start(&ctx.scratch)?, jack)))
            .map_err(|e| MtcOutcome::Failed(format!("{e:#}"))),
    };
    let mut listen = jack_command(&ctx.client);
    listen
        .args(["listen", "--json", "--bind", &bind.to_string(), "--duration", &seconds.to_string()])
        .args(["--ltc", &format!("wav:{}", wav.display()), "--ltc-sample-rate", &SR.to_string()])
        .args(["--artnet", &artnet.addr.to_string()]);
    if let Ok((recorder, _)) = &mtc_rig {
        listen.args(["--mtc", &format!("jack:{}", recorder.port)]);
    }
    let listen = listen
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("could not start osc-timecode listen")?;
    let mut listen = KillOnDrop(listen);
    std::thread::sleep(Duration::from_millis(100));
    relay.set_target(Some(bind));
    let status = listen.0.wait().context("waiting for listen")?;
    relay.set_target(None);
    drop(serve);
    if !status.success() {
        bail!("listen ended with {status}");
    }
    let packets = artnet.finish(Duration::from_millis(50))?;
    let log = relay.log.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clone();
    let forwarded: Vec<_> = log.iter().filter(|r| r.to.is_some()).collect();
    let truth: HashMap<i64, SystemTime> = forwarded.iter().map(|r| (r.frame, r.timetag)).collect();
    let arrival_ms: Vec<f64> = forwarded.iter().map(|r| signed_secs_wall(r.timetag, r.forwarded) * 1e3).collect();
    // MTC: every frame serve played is a truth, forwarded or not.
    let mtc = match mtc_rig {
        Err(outcome) => outcome,
        Ok((recorder, jack)) => {
            let recorded = recorder.finish();
            drop(jack);
            match recorded {
                Ok(recorded) => {
                    let mut starts: Vec<(i64, i128)> =
                        log.iter().map(|r| (r.frame, osc_timecode_core::chase::unix_nanos(r.timetag))).collect();
                    starts.sort_unstable_by_key(|&(_, s)| s);
                    starts.dedup();
                    let m = mtc_errors(&recorded, &starts);
                    if m.error_ms.is_empty() {
                        MtcOutcome::Failed(format!(
                            "no quarter frame measured ({} mismatched, {} unmatched, {} full frames)",
                            m.mismatched, m.unmatched, m.full_frames
                        ))
                    } else {
                        MtcOutcome::Measured(m)
                    }
                }
                Err(e) => MtcOutcome::Failed(format!("{e:#}")),
            }
        }
    };
    let frame_of = |(h, m, s, f): (u8, u8, u8, u8)| {
        ((i64::from(h) * 60 + i64::from(m)) * 60 + i64::from(s)) * i64::from(RATE.nominal()) + i64::from(f)
    };
    // Art-Net: serve starts at frame 0 and runs for less than a day: a label is one frame.
    let mut artnet_ms = Vec::new();
    for p in &packets {
        let frame = frame_of(artnet_label(p)?);
        if let Some(t) = truth.get(&frame) {
            artnet_ms.push(signed_secs_wall(*t, p.wall) * 1e3);
        }
    }
    // LTC.
    let (samples, description) = read_wav(&wav)?;
    let _ = std::fs::remove_file(&wav);
    let t0: i128 = description
        .strip_prefix(DESCRIPTION_PREFIX)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("the LTC file's Description does not give sample 0's instant: {description:?}"))?;
    let mut ltc_samples = Vec::new();
    for d in libltc::decode(&samples, SR, RATE, "bench stage") {
        let frame = Timecode::parse(&d.label, RATE).context("libltc's label")?.to_frame();
        let Some(t) = truth.get(&frame) else { continue };
        let Some(start) = edge_near(&samples, d.off_start) else { continue };
        let truth_ns = osc_timecode_core::chase::unix_nanos(*t) - t0;
        let expected = truth_ns as f64 * f64::from(SR) / 1e9;
        ltc_samples.push(start as f64 - expected);
    }
    if ltc_samples.is_empty() || artnet_ms.is_empty() {
        bail!("nothing measured: {} LTC words, {} Art-Net packets", ltc_samples.len(), artnet_ms.len());
    }
    Ok(Measured { ltc_samples, artnet_ms, arrival_ms, frames: forwarded.len(), mtc })
}

/// The word's first sample: the first sample past the level change (a zero crossing, or the
/// first sound after silence) nearest `off_start` and not after it (libltc reports 0–2 samples
/// late).
fn edge_near(samples: &[f32], off_start: i64) -> Option<i64> {
    let at = usize::try_from(off_start).ok()?;
    (at.saturating_sub(4).max(1)..=at.min(samples.len().saturating_sub(1)))
        .rev()
        .find(|&k| {
            let (a, b) = (samples[k - 1], samples[k]);
            (a <= 0.0 && b > 0.0) || (a >= 0.0 && b < 0.0)
        })
        .map(|k| k as i64)
}

/// The float samples and the bext Description of a mono float WAV (the client's LTC file).
fn read_wav(path: &std::path::Path) -> anyhow::Result<(Vec<f32>, String)> {
    let data = std::fs::read(path).with_context(|| format!("could not read {}", path.display()))?;
    let (mut pos, mut samples, mut description) = (12usize, None, None);
    while pos + 8 <= data.len() {
        let id = &data[pos..pos + 4];
        let len = u32::from_le_bytes(data[pos + 4..pos + 8].try_into()?) as usize;
        let body = data.get(pos + 8..pos + 8 + len).context("a chunk runs past the end")?;
        match id {
            b"data" => {
                samples = Some(body.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
            }
            b"bext" => {
                let text = &body[..256.min(body.len())];
                description = Some(String::from_utf8_lossy(text).trim_end_matches('\0').to_owned());
            }
            _ => {}
        }
        pos += 8 + len + (len & 1);
    }
    Ok((samples.context("no data chunk")?, description.context("no bext chunk")?))
}

/// What the MTC part of the run gave.
enum MtcOutcome {
    /// Not run: a tool is missing (the words say which, and how to get it).
    Skipped(String),
    /// Run, and failed (the words say why).
    Failed(String),
    /// Measured.
    Measured(MtcMeasured),
}

/// The MTC measurement.
struct MtcMeasured {
    /// Recorded quarter frame − its true due time, ms, per quarter whose piece and nibble agree
    /// with the quarter its due time names.
    error_ms: Vec<f64>,
    /// Quarter frames whose piece or nibble disagree with the quarter nearest in time.
    mismatched: usize,
    /// Quarter frames more than a frame from any due time of a frame serve played.
    unmatched: usize,
    /// Full frames recorded (one at the lock).
    full_frames: usize,
    /// Other MIDI messages recorded.
    other: usize,
}

/// One MIDI message the recorder wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recorded {
    /// A quarter frame at wall time `at` (ns since the Unix epoch): mido's `frame_type` (the
    /// piece) and `frame_value` (its nibble).
    Quarter { at: i128, piece: u8, value: u8 },
    /// A full frame.
    Full,
    /// Anything else.
    Other,
}

/// The bench's private JACK server (`jackd -n osc-tc-bench -d dummy`), stopped with SIGTERM
/// when dropped (which unregisters it; SIGKILL after 5 s).
struct JackServer {
    /// The server process. `None` once stopped.
    server: Option<Child>,
}

impl JackServer {
    /// Starts the server and waits until it answers (one more try if the first one ends before
    /// it does, e.g. a stale registry entry of the same name).
    fn start(scratch: &Path) -> anyhow::Result<Self> {
        let log = scratch.join("jackd-bench.log");
        let mut last = String::new();
        for _ in 0..2 {
            let out = std::fs::File::create(&log).with_context(|| format!("could not create {}", log.display()))?;
            let err = out.try_clone().context("jackd's log")?;
            let server = jack_command("jackd")
                .args(["-n", JACK_SERVER, "-d", "dummy", "-r", &SR.to_string(), "-p", &JACK_PERIOD.to_string()])
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .context("could not start jackd")?;
            let mut jack = Self { server: Some(server) };
            let ok = jack_command("jack_wait")
                .args(["-s", JACK_SERVER, "-w", "-t", "20"])
                .output()
                .context("could not run jack_wait")?;
            if ok.status.success() {
                return Ok(jack);
            }
            last =
                format!("{}{}", String::from_utf8_lossy(&ok.stderr), std::fs::read_to_string(&log).unwrap_or_default());
            jack.stop();
            std::thread::sleep(Duration::from_millis(500));
        }
        bail!("jackd -n {JACK_SERVER} did not answer: {}", last.trim())
    }

    /// Stops the server: SIGTERM, then SIGKILL after 5 s.
    fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = Command::new("kill").args(["-TERM", &server.id().to_string()]).status();
            let until = Instant::now() + Duration::from_secs(5);
            while Instant::now() < until {
                if let Ok(Some(_)) = server.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = server.kill();
            let _ = server.wait();
        }
    }
}

impl Drop for JackServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A command that talks to the bench's JACK server (and never starts one of its own).
fn jack_command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.env("JACK_DEFAULT_SERVER", JACK_SERVER).env("JACK_NO_AUDIO_RESERVATION", "1").env("JACK_NO_START_SERVER", "1");
    cmd
}

/// `tests/bench/mtc_jack_record.py` running on the bench's JACK server.
struct MtcRecorder {
    /// The script (killed if dropped before [`MtcRecorder::finish`]).
    child: KillOnDrop,
    /// Its output, after the `ready` line.
    stdout: BufReader<ChildStdout>,
    /// Its standard error, for messages.
    log: PathBuf,
    /// Its MIDI input port, `client:in`.
    port: String,
}

impl MtcRecorder {
    /// Starts the recorder and waits for its port.
    fn start(scratch: &Path) -> anyhow::Result<Self> {
        let script = workspace_root().join("tests").join("bench").join("mtc_jack_record.py");
        let log = scratch.join("mtc-recorder.log");
        let err = std::fs::File::create(&log).with_context(|| format!("could not create {}", log.display()))?;
        let mut child = jack_command("python3")
            .arg(&script)
            .arg(RECORDER)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .with_context(|| format!("could not start {}", script.display()))?;
        let stdout = child.stdout.take().context("the recorder's output")?;
        let mut recorder = Self { child: KillOnDrop(child), stdout: BufReader::new(stdout), log, port: String::new() };
        let mut line = String::new();
        recorder.stdout.read_line(&mut line).context("reading the recorder's first line")?;
        match line.trim().strip_prefix("ready ") {
            Some(port) => recorder.port = port.to_owned(),
            None => bail!(
                "the MTC recorder did not start: {}",
                std::fs::read_to_string(&recorder.log).unwrap_or_default().trim()
            ),
        }
        Ok(recorder)
    }

    /// Ends the recording (closes its input) and reads what it recorded.
    fn finish(mut self) -> anyhow::Result<Vec<Recorded>> {
        drop(self.child.0.stdin.take());
        let mut text = String::new();
        self.stdout.read_to_string(&mut text).context("reading the recorder's output")?;
        let status = self.child.0.wait().context("waiting for the recorder")?;
        if !status.success() {
            bail!(
                "the MTC recorder ended with {status}: {}",
                std::fs::read_to_string(&self.log).unwrap_or_default().trim()
            );
        }
        text.lines().map(parse_recorded).collect()
    }
}

/// One line of the recorder's output.
fn parse_recorded(line: &str) -> anyhow::Result<Recorded> {
    let f: Vec<&str> = line.split(' ').collect();
    Ok(match f.as_slice() {
        ["quarter", at, piece, value] => Recorded::Quarter {
            at: at.parse().with_context(|| format!("the recorder's line {line:?}"))?,
            piece: piece.parse().with_context(|| format!("the recorder's line {line:?}"))?,
            value: value.parse().with_context(|| format!("the recorder's line {line:?}"))?,
        },
        ["full", ..] => Recorded::Full,
        ["other", ..] => Recorded::Other,
        _ => bail!("the recorder wrote {line:?}"),
    })
}

/// Why the MTC part cannot run here, if a tool is missing.
fn mtc_missing() -> Option<String> {
    let jackd = Command::new("sh")
        .args(["-c", "command -v jackd && command -v jack_wait"])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !jackd {
        return Some(format!("skipped: needs jackd2 ({JACK_INSTALL})"));
    }
    let python = Command::new("python3")
        .args(["-c", "import jack, mido"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !python {
        return Some(format!("skipped: needs the Python packages JACK-Client and mido ({RECORDER_INSTALL})"));
    }
    None
}

/// The quarter frame our frame `m` (25 fps, from 00:00:00:00) sends as its quarter `q`:
/// (piece, nibble). Piece `4 · (m mod 2) + q` of the sequence carrying the even frame
/// `m − (m mod 2)` (MTC's "Quarter Frame Messages": pieces 0/1 frames, 2/3 seconds, 4/5
/// minutes, 6/7 hours, piece 7 also the rate code, 1 for 25 fps). Written here from the spec,
/// not taken from core.
fn expected_quarter(m: i64, q: u8) -> (u8, u8) {
    let piece = 4 * (m.rem_euclid(2) as u8) + q;
    let carried = m - m.rem_euclid(2);
    let fps = i64::from(RATE.nominal());
    let (ff, ss, mm, hh) = (
        carried.rem_euclid(fps),
        carried.div_euclid(fps).rem_euclid(60),
        carried.div_euclid(fps * 60).rem_euclid(60),
        carried.div_euclid(fps * 3600).rem_euclid(24),
    );
    let field = [ff, ss, mm, hh][usize::from(piece / 2)] as u8;
    let value = match piece {
        7 => (1 << 1) | (field >> 4 & 1),
        p if p % 2 == 0 => field & 0x0F,
        _ => field >> 4,
    };
    (piece, value)
}

/// The due time nearest `at` among the quarters of the frames in `starts` (frame, true start
/// ns; sorted by start): (frame, quarter, `at` − due ns). `None` when no due time is within a
/// frame of `at`.
fn nearest_quarter(starts: &[(i64, i128)], at: i128) -> Option<(i64, u8, i128)> {
    let i = starts.partition_point(|&(_, s)| s <= at);
    starts[i.saturating_sub(2)..(i + 1).min(starts.len())]
        .iter()
        .flat_map(|&(m, s)| (0..4u8).map(move |q| (m, q, at - (s + i128::from(q) * QUARTER_NS))))
        .min_by_key(|&(_, _, e)| e.abs())
        .filter(|&(_, _, e)| e.abs() < 4 * QUARTER_NS)
}

/// Measures the recorded MTC against serve's frame starts.
fn mtc_errors(recorded: &[Recorded], starts: &[(i64, i128)]) -> MtcMeasured {
    let mut out = MtcMeasured { error_ms: Vec::new(), mismatched: 0, unmatched: 0, full_frames: 0, other: 0 };
    for r in recorded {
        match *r {
            Recorded::Quarter { at, piece, value } => match nearest_quarter(starts, at) {
                Some((m, q, e)) if expected_quarter(m, q) == (piece, value) => out.error_ms.push(e as f64 / 1e6),
                Some(_) => out.mismatched += 1,
                None => out.unmatched += 1,
            },
            Recorded::Full => out.full_frames += 1,
            Recorded::Other => out.other += 1,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarters_carry_the_even_frame() {
        // Frame 93079 (01:02:03:04) is odd: its quarters are pieces 4–7 of the sequence that
        // frame 93078 (01:02:03:03) began with pieces 0–3.
        let m = ((60 + 2) * 60 + 3) * 25 + 4;
        assert_eq!(expected_quarter(m - 1, 0), (0, 3), "frames, low nibble");
        assert_eq!(expected_quarter(m - 1, 1), (1, 0), "frames, high nibble");
        assert_eq!(expected_quarter(m - 1, 2), (2, 3), "seconds, low nibble");
        assert_eq!(expected_quarter(m - 1, 3), (3, 0), "seconds, high nibble");
        assert_eq!(expected_quarter(m, 0), (4, 2), "minutes, low nibble: still 01:02:03:03's");
        assert_eq!(expected_quarter(m, 1), (5, 0), "minutes, high nibble");
        assert_eq!(expected_quarter(m, 2), (6, 1), "hours, low nibble");
        assert_eq!(expected_quarter(m, 3), (7, 2), "rate code 1 (25 fps), hours bit 4 clear");
        // 23:59:59:23 (even): frames 23 = 0x17, seconds and minutes 59 = 0x3B, hours 23 = 0x17.
        let late = ((23 * 60 + 59) * 60 + 59) * 25 + 23;
        let pieces: Vec<(u8, u8)> = (0..8).map(|k| expected_quarter(late + k / 4, (k % 4) as u8)).collect();
        assert_eq!(pieces, [(0, 7), (1, 1), (2, 11), (3, 3), (4, 11), (5, 3), (6, 7), (7, 3)]);
    }

    #[test]
    fn each_quarter_matches_the_nearest_due_time() {
        let ms = 1_000_000i128;
        let starts: Vec<(i64, i128)> = (10..14).map(|m| (m, i128::from(m) * 40 * ms)).collect();
        assert_eq!(nearest_quarter(&starts, 400 * ms), Some((10, 0, 0)));
        assert_eq!(nearest_quarter(&starts, 431 * ms), Some((10, 3, ms)));
        assert_eq!(nearest_quarter(&starts, 436 * ms), Some((11, 0, -4 * ms)), "the next frame's first");
        assert_eq!(nearest_quarter(&starts, 398 * ms), Some((10, 0, -2 * ms)), "early, before the first start");
        assert_eq!(nearest_quarter(&starts, 300 * ms), None, "far from any frame served");
        assert_eq!(nearest_quarter(&starts, 600 * ms), None);
        let (piece, value) = expected_quarter(11, 0);
        let recorded = [
            Recorded::Full,
            Recorded::Quarter { at: 441 * ms, piece, value },
            Recorded::Quarter { at: 450 * ms, piece: 0, value: 0 },
            Recorded::Quarter { at: 900 * ms, piece: 0, value: 0 },
        ];
        let m = mtc_errors(&recorded, &starts);
        assert_eq!(m.error_ms, vec![1.0]);
        assert_eq!((m.mismatched, m.unmatched, m.full_frames, m.other), (1, 1, 1, 0));
    }
}
