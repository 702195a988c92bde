//! Section 10, the stage client's outputs behind a jittery network (issue 17):
//! `osc-timecode serve --rate 25` → the section-5 relay (each datagram delayed by a uniform
//! random 0–5 ms) → `osc-timecode listen --ltc wav:FILE --artnet 127.0.0.1:PORT`, which
//! re-generates LTC and Art-Net from its chase. Truth is serve's schedule: each frame's timetag.
//!
//! - LTC word start error: x42's libltc finds every word in the file (not our decoder); the
//!   word's first sample is then located exactly in the samples (the edge nearest libltc's
//!   `off_start`: libltc reports 0–2 samples late); the file's sample 0 plays at the instant its
//!   bext Description names, so the word's start is an instant on the wall clock, compared with
//!   the true start of the frame its label names, in samples at 48 kHz.
//! - Art-Net departure error: each packet's kernel receive time (`SO_TIMESTAMPNS`, section 9)
//!   minus the true start of the frame it carries (artnet_protocol reads the label).
//! - The baseline, in the same run: a receiver that emits each frame when its datagram arrives
//!   (the relay's forward instant minus the true frame start), in samples for LTC and in ms for
//!   Art-Net.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, bail};
use osc_timecode_core::{FrameRate, Timecode};

use super::artnet::{StampedReceiver, artnet_label};
use super::audio::libltc;
use super::lock::{Relay, SEED};
use super::stats::{Summary, cell, num, ratio};
use super::{Ctx, KillOnDrop, Section, Target, signed_secs_wall};
use crate::cues::free_loopback_addr;

/// The rate served.
const RATE: FrameRate = FrameRate::FPS_25;
/// The LTC file's sample rate.
const SR: u32 = 48_000;
/// Issue 17's target for the LTC word start error, p99, samples at 48 kHz.
const TARGET_LTC_P99_SAMPLES: f64 = 1.0;
/// Issue 17's target for the Art-Net departure error, p99, ms.
const TARGET_ARTNET_P99_MS: f64 = 0.5;
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
}

/// Runs section 10.
pub fn run(ctx: &Ctx) -> Section {
    let seconds = if ctx.quick { 5.0 } else { 60.0 };
    eprintln!("[bench] stage outputs: {seconds} s of LTC and Art-Net behind a 0–5 ms jitter relay");
    let mut body = format!(
        "`osc-timecode serve --rate 25` → relay (each datagram delayed by a uniform random 0–5 ms, seed {SEED:#x}, as \
         in section 5) → `osc-timecode listen --ltc wav:FILE --artnet 127.0.0.1:PORT` for {seconds} s. Truth is \
         serve's schedule (its timetags). LTC: libltc finds each word, its first sample is located in the file (the \
         edge nearest libltc's report), placed on the wall clock by the instant the file's bext Description gives for \
         sample 0, and compared with the true start of its frame. Art-Net: the kernel's receive time of each packet \
         (`SO_TIMESTAMPNS`) minus the true start of its frame. Baseline, same run: emit on arrival (the relay's \
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
                "| baseline, Art-Net sent on arrival, ms | {} | {} datagrams |\n\n",
                cell(arrival),
                m.arrival_ms.len()
            ));
            body.push_str(
                "Each output computes from the chase, not from arrivals: LTC samples from the stream's own clock \
                 (sample k plays at t0 + k/48000), Art-Net at absolute deadlines (sleep, then spin the last 0.3 ms). \
                 Network jitter reaches neither; what is left is rounding to a sample (LTC) and the wake-up and the \
                 loopback send (Art-Net).\n\n",
            );
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

/// Runs serve → relay → listen with LTC and Art-Net, and measures against serve's schedule.
fn measure(ctx: &Ctx, seconds: f64) -> anyhow::Result<Measured> {
    let present = Command::new("python3")
        .args(["-c", "import ctypes; ctypes.CDLL('libltc.so.11')"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
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
    let listen = Command::new(&ctx.client)
        .args(["listen", "--json", "--bind", &bind.to_string(), "--duration", &seconds.to_string()])
        .args(["--ltc", &format!("wav:{}", wav.display()), "--ltc-sample-rate", &SR.to_string()])
        .args(["--artnet", &artnet.addr.to_string()])
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
    Ok(Measured { ltc_samples, artnet_ms, arrival_ms, frames: forwarded.len() })
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
