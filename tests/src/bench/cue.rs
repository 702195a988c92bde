//! Section 6, the cue path: how many cues per second the plugin takes before it drops any, and
//! how long a cue takes from the sender to the MIDI event in the host's output, immediate and
//! timetagged. The plugin (release) runs in the harness paced like an audio callback, playing,
//! sending timecode; the cues are `/trigger/N VALUE` (a control change, no note-off to follow).
//!
//! Drops are counted where they happen: datagrams the kernel dropped before the plugin read them
//! (sent − `received`), and the plugin's own `dropped_*` counters (`/status`).

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant, SystemTime};

use rosc::OscType;

use super::stats::{Summary, cell, num};
use super::{Ctx, Section, Target, cue_plugin, signed_secs_wall, sleep_until};
use crate::clap::{BlockRecord, Midi, OutputEventKind, RunReport, nice_plug_param_hash};
use crate::cues::{CueSender, CueValue, Status, encode, expected_offset, message, query_status, timetag};
use crate::transport::Transport;

/// Host sample rate.
const SR: u32 = 48_000;

/// The counters once the plugin has settled, asked a few times in case a query is lost.
fn status(listen: SocketAddr) -> anyhow::Result<Status> {
    for _ in 0..5 {
        if let Some(s) = query_status("127.0.0.1".parse()?, listen, None, Duration::from_secs(1)) {
            return Ok(s);
        }
    }
    anyhow::bail!("no /status reply from the plugin")
}

/// One rate step of the throughput run.
#[derive(Debug, Clone)]
struct Step {
    /// Cues per second aimed at.
    rate: u64,
    /// Datagrams handed to the kernel.
    sent: u64,
    /// Sends the kernel refused.
    send_errors: u64,
    /// Seconds the sending took (at high rates the sender itself may fall behind).
    elapsed: f64,
    /// Counter changes over the step (after it settled).
    delta: std::collections::BTreeMap<String, i64>,
}

impl Step {
    fn get(&self, name: &str) -> i64 {
        self.delta.get(name).copied().unwrap_or(0)
    }

    /// The plugin's `dropped_*` over the step.
    fn dropped(&self) -> i64 {
        self.delta.iter().filter(|(n, _)| n.starts_with("dropped_")).map(|(_, c)| c).sum()
    }

    /// Every cue sent was applied.
    fn clean(&self) -> bool {
        self.send_errors == 0 && self.get("applied") == self.sent as i64 && self.dropped() == 0
    }
}

/// Sends `/trigger/N` at `rate` per second for `seconds` from one thread (absolute schedule).
/// `u64::MAX` sends as fast as it can for `seconds`.
fn send_at_rate(socket: &UdpSocket, to: SocketAddr, packets: &[Vec<u8>], rate: u64, seconds: f64) -> (u64, u64, f64) {
    let unpaced = rate == u64::MAX;
    let total = if unpaced { u64::MAX } else { (rate as f64 * seconds) as u64 };
    let started = Instant::now();
    let (mut sent, mut errors) = (0u64, 0u64);
    while sent + errors < total {
        if unpaced {
            if (sent + errors) % 256 == 0 && started.elapsed().as_secs_f64() >= seconds {
                break;
            }
        } else {
            let due = started + Duration::from_nanos((sent + errors) * 1_000_000_000 / rate);
            let now = Instant::now();
            if due > now {
                std::thread::sleep((due - now).min(Duration::from_micros(200)));
                continue;
            }
        }
        match socket.send_to(&packets[((sent + errors) % packets.len() as u64) as usize], to) {
            Ok(_) => sent += 1,
            Err(_) => errors += 1,
        }
    }
    (sent, errors, started.elapsed().as_secs_f64())
}

/// The throughput run: the plugin at `block`-sample blocks, cues at each rate in turn (`u64::MAX`:
/// as fast as one thread sends).
fn throughput(block: u32, rates: &[u64], quick: bool) -> anyhow::Result<Vec<Step>> {
    let seconds = if quick { 1.0 } else { 2.0 };
    let settle = 0.6;
    let (_sink, listen, mut plugin) = cue_plugin()?;
    plugin.activate(SR, block);
    CueSender::new(listen).wait_ready();
    let packets: Vec<Vec<u8>> =
        (0..128).map(|n| encode(&message(&format!("/trigger/{}", n % 120), vec![OscType::Int(n)]))).collect();
    let mut transport = Transport::playing_from(SR, 0);
    // The run outlasts the sender, which ends with every step's counters read.
    let run_seconds = rates.len() as f64 * (seconds + settle + 0.4) + 1.5;
    let total = (run_seconds * f64::from(SR)) as u64 / u64::from(block) * u64::from(block);
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    let steps = std::thread::scope(|s| {
        let sender = s.spawn(|| -> anyhow::Result<Vec<Step>> {
            let mut steps = Vec::new();
            std::thread::sleep(Duration::from_millis(300));
            for &rate in rates {
                let before = status(listen)?;
                let (sent, send_errors, elapsed) = send_at_rate(&socket, listen, &packets, rate, seconds);
                std::thread::sleep(Duration::from_secs_f64(settle));
                let after = status(listen)?;
                steps.push(Step { rate, sent, send_errors, elapsed, delta: after.delta(&before) });
            }
            Ok(steps)
        });
        plugin.run_realtime(&mut transport, total, block);
        sender.join().unwrap_or_else(|_| Err(anyhow::anyhow!("the sender panicked")))
    })?;
    plugin.deactivate();
    Ok(steps)
}

/// Latency of one block size.
#[derive(Debug, Clone)]
struct Latency {
    /// Samples per block.
    block: u32,
    /// Immediate cues: blocks from the one running at the send to the one with the event.
    blocks: Option<Summary>,
    /// Immediate cues: send → start of the block with the event, ms.
    ms: Option<Summary>,
    /// Immediate cues matched / sent.
    immediate: (usize, usize),
    /// Timetagged cues: landed − aimed sample (absolute), samples.
    landing: Option<Summary>,
    /// Timetagged cues: median of the signed landed − aimed, samples (positive: late).
    landing_signed_p50: f64,
    /// Timetagged cues matched / sent.
    tagged: (usize, usize),
    /// Timetagged cues due in a gap between two blocks (landed at the next block's first sample).
    in_gap: usize,
    /// The timetagged cues were sent this long after activation, at the earliest.
    after: Option<Duration>,
}

impl Latency {
    /// The table row: `label`, the figures, then `last` (the table's own last column).
    fn row(&self, label: &str, last: &str) -> String {
        format!(
            "| {label} | {} | {} | {}/{} | {} | {} | {}/{} | {last} |\n",
            cell(self.blocks),
            cell(self.ms),
            self.immediate.0,
            self.immediate.1,
            cell(self.landing),
            num(self.landing_signed_p50),
            self.tagged.0,
            self.tagged.1,
        )
    }

    /// The immediate cues' blocks for a headline: `"512: p50 1.00 p99 2.00"`.
    fn immediate_headline(&self) -> String {
        let s = self.blocks.map_or("—".to_owned(), |s| format!("p50 {} p99 {}", num(s.p50), num(s.p99)));
        format!("{}: {s}", self.block)
    }

    /// Every cue of both kinds matched.
    fn all_matched(&self) -> bool {
        self.immediate.0 == self.immediate.1 && self.tagged.0 == self.tagged.1
    }
}

/// What the latency runs send: MIDI cues (the baseline) or parameter cues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `/trigger/1 i` immediate, `/trigger/2 i` timetagged: control changes 1 and 2, value i.
    Midi,
    /// `/macro/1 i` immediate, `/macro/2 i` timetagged: Cue Macro 1 and 2 set to i / 127, as the
    /// host's parameter value events.
    Param,
}

impl Kind {
    /// The immediate and the timetagged cue's address.
    fn addresses(self) -> [&'static str; 2] {
        match self {
            Self::Midi => ["/trigger/1", "/trigger/2"],
            Self::Param => ["/macro/1", "/macro/2"],
        }
    }

    /// Which of the two cues an output event of `report` is (0 immediate, 1 timetagged) and the
    /// cue's index `i`, with the event's block and offset.
    fn landed(self, report: &RunReport) -> Vec<(usize, usize, usize, u32)> {
        match self {
            Self::Midi => report
                .midi()
                .into_iter()
                .filter_map(|m| match m.midi {
                    Midi::ControlChange { number: n @ 1..=2, value, .. } => {
                        Some((usize::from(n - 1), usize::from(value), m.block, m.offset))
                    }
                    _ => None,
                })
                .collect(),
            Self::Param => {
                let macros = [nice_plug_param_hash("macro1"), nice_plug_param_hash("macro2")];
                report
                    .events
                    .iter()
                    .filter_map(|e| match e.kind {
                        OutputEventKind::ParamValue { param_id, value } => {
                            let which = macros.iter().position(|&m| m == param_id)?;
                            Some((which, (value * 127.0).round() as usize, e.block, e.time))
                        }
                        _ => None,
                    })
                    .collect()
            }
        }
    }
}

/// Index of the block that was running at `t`: the last one that started at or before it.
fn block_at(blocks: &[BlockRecord], t: SystemTime) -> Option<usize> {
    blocks.iter().rposition(|b| b.wall_start <= t)
}

/// Sends immediate then timetagged cues into a paced run at `block` samples and measures where
/// each one's MIDI event landed. With `after`, the timetagged cues wait until that long after
/// activation.
fn latency(kind: Kind, block: u32, quick: bool, after: Option<Duration>) -> anyhow::Result<Latency> {
    let [now_address, tagged_address] = kind.addresses();
    let n = if quick { 15 } else { 60 };
    let lead = Duration::from_millis(300);
    let (_sink, listen, mut plugin) = cue_plugin()?;
    plugin.activate(SR, block);
    let activated = Instant::now();
    let sender = CueSender::new(listen);
    sender.wait_ready();
    let mut transport = Transport::playing_from(SR, 0);
    // Both phases (at most 62 ms between cues), the timetag lead, and a few blocks to spare.
    let phases = 0.3 + 2.0 * f64::from(n) * 0.062 + lead.as_secs_f64() + 0.5 + f64::from(block) / f64::from(SR) * 3.0;
    let run_seconds = phases + after.map_or(0.0, |a| a.as_secs_f64());
    let total = (run_seconds * f64::from(SR)) as u64 / u64::from(block) * u64::from(block) + u64::from(block);
    let (report, immediate, tagged): (RunReport, Vec<SystemTime>, Vec<SystemTime>) = std::thread::scope(|s| {
        let cues = s.spawn(|| {
            let (mut immediate, mut tagged) = (Vec::new(), Vec::new());
            let start = Instant::now() + Duration::from_millis(300);
            // Sends at irregular moments (50 ms + 0–12 ms), so they fall anywhere in a block.
            let mut at = start;
            for i in 0..n {
                sleep_until(at);
                immediate.push(SystemTime::now());
                sender.cue(now_address, Some(CueValue::Int(i)), None);
                at += Duration::from_millis(50 + (i as u64 * 7) % 13);
            }
            if let Some(after) = after {
                at = at.max(activated + after);
            }
            for i in 0..n {
                sleep_until(at);
                let due = SystemTime::now() + lead;
                tagged.push(due);
                sender.cue_at(tagged_address, Some(CueValue::Int(i)), None, timetag(due));
                at += Duration::from_millis(50 + (i as u64 * 5) % 11);
            }
            (immediate, tagged)
        });
        let report = plugin.run_realtime(&mut transport, total, block);
        let (immediate, tagged) = cues.join().unwrap_or_default();
        (report, immediate, tagged)
    });
    plugin.deactivate();
    let (mut blocks, mut ms, mut landing, mut in_gap) = (Vec::new(), Vec::new(), Vec::new(), 0);
    let (mut got_immediate, mut got_tagged) = (0, 0);
    for (which, value, block_index, offset) in kind.landed(&report) {
        let b = &report.block_log[block_index];
        match which {
            0 => {
                let Some(sent) = immediate.get(value) else { continue };
                got_immediate += 1;
                if let Some(running) = block_at(&report.block_log, *sent) {
                    blocks.push(block_index as f64 - running as f64);
                }
                ms.push(signed_secs_wall(*sent, b.wall_start) * 1e3);
            }
            _ => {
                let Some(due) = tagged.get(value) else { continue };
                got_tagged += 1;
                let want = expected_offset(*due, Duration::ZERO, b, SR);
                let prev = block_index.checked_sub(1).map(|p| &report.block_log[p]);
                let in_prev = prev.map(|p| expected_offset(*due, Duration::ZERO, p, SR));
                if offset == 0 && want < 0 && prev.zip(in_prev).is_some_and(|(p, i)| i >= i64::from(p.len)) {
                    // Due after the previous block's last sample and before this block began.
                    in_gap += 1;
                    landing.push(0.0);
                } else {
                    landing.push((i64::from(offset) - want) as f64);
                }
            }
        }
    }
    Ok(Latency {
        block,
        blocks: Summary::of(&blocks),
        ms: Summary::of(&ms),
        immediate: (got_immediate, immediate.len()),
        landing: Summary::of_abs(&landing),
        landing_signed_p50: Summary::of(&landing).map_or(f64::NAN, |s| s.p50),
        tagged: (got_tagged, tagged.len()),
        in_gap,
        after,
    })
}

/// A rate for the report (`u64::MAX` is the unpaced step).
fn rate_name(rate: u64) -> String {
    if rate == u64::MAX { "max (unpaced)".to_owned() } else { rate.to_string() }
}

/// Runs section 6.
pub fn run(ctx: &Ctx) -> Section {
    let mut body = String::new();
    let mut targets = Vec::new();
    let mut headline = Vec::new();
    let mut findings = Vec::new();
    body.push_str(
        "### Throughput\n\nThe plugin at 48 kHz, blocks paced in real time, playing and sending timecode; one sender \
         thread sends immediate `/trigger/N VALUE` at each rate in turn (absolute schedule; \"max\" = as fast as it \
         goes), then waits 0.6 s and reads `/status`. Each cue is answered with an `/ack` (never read by the sender). \
         \"kernel lost\" = sent − `received`. The plugin hands at most 1024 cues to the audio thread at a time \
         (PROTOCOL.md), and the audio thread takes them once per block, so the ceiling is about 1024 × blocks per \
         second: 96 000/s at 512 samples, 12 000/s at 4096.\n\n| block | rate /s | sent | achieved /s | received | \
         applied | dropped (plugin) | kernel lost | clean |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    let plans: [(u32, &[u64]); 2] = if ctx.quick {
        [(512, &[1_000, 10_000, 50_000, u64::MAX]), (4096, &[5_000, 20_000])]
    } else {
        [
            (512, &[1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, u64::MAX]),
            (4096, &[2_000, 5_000, 10_000, 20_000]),
        ]
    };
    for (block, rates) in plans {
        eprintln!("[bench] cue path: throughput at {block} samples");
        match throughput(block, rates, ctx.quick) {
            Ok(steps) => {
                for st in &steps {
                    let reasons: Vec<String> = st
                        .delta
                        .iter()
                        .filter(|(n, c)| n.starts_with("dropped_") && **c != 0)
                        .map(|(n, c)| format!("{}: {c}", n.trim_start_matches("dropped_")))
                        .collect();
                    body.push_str(&format!(
                        "| {block} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                        rate_name(st.rate),
                        st.sent,
                        num(st.sent as f64 / st.elapsed),
                        st.get("received"),
                        st.get("applied"),
                        if reasons.is_empty() { "0".to_owned() } else { reasons.join(", ") },
                        st.sent as i64 - st.get("received"),
                        if st.clean() { "yes" } else { "no" },
                    ));
                }
                let best = steps.iter().take_while(|s| s.clean()).last().map(|s| s.rate);
                let first_bad = steps.iter().find(|s| !s.clean());
                headline.push(match (best, first_bad) {
                    (Some(b), Some(f)) => format!(
                        "cues at {block}-sample blocks: every cue applied up to {}/s; at {}/s {} of {} applied",
                        rate_name(b),
                        rate_name(f.rate),
                        f.get("applied"),
                        f.sent
                    ),
                    (Some(_), None) => format!(
                        "cues at {block}-sample blocks: every cue applied at every rate tried, up to {}/s",
                        steps.last().map_or("?".to_owned(), |s| num(s.sent as f64 / s.elapsed))
                    ),
                    (None, _) => format!("cues at {block}-sample blocks: drops even at the lowest rate tried"),
                });
            }
            Err(e) => body.push_str(&format!("| {block} | failed: {e:#} | | | | | | | |\n")),
        }
    }
    body.push('\n');

    body.push_str(
        "### Latency\n\nImmediate cues sent at irregular moments (so they fall anywhere in a block): the block that \
         was running when the cue was sent is 0; \"1\" is the next block, the earliest possible. Timetagged cues (300 \
         ms ahead): where the event landed against the sample the plugin should aim at (the sample processed at \
         timetag − one block, PROTOCOL.md), in samples at 48 kHz, from the harness's own reading of each block's start \
         (the plugin reads its own clock, microseconds apart).\n\n| block | immediate: blocks p50 / p99 / max | send → \
         block start ms p50 / p99 / max | matched | timetagged: landing error samples p50 / p99 / max | signed p50 | \
         matched | due between blocks |\n|---|---|---|---|---|---|---|---|\n",
    );
    let mut lat = Vec::new();
    // The last run sends its timetagged cues after the cue thread's first re-anchoring of its
    // monotonic ↔ wall-clock pair (10 s after activation).
    let runs: &[(u32, Option<Duration>)] = if ctx.quick {
        &[(64, None), (512, None), (4096, None)]
    } else {
        &[(64, None), (512, None), (4096, None), (512, Some(Duration::from_secs(11)))]
    };
    for &(block, after) in runs {
        eprintln!("[bench] cue path: latency at {block} samples");
        match latency(Kind::Midi, block, ctx.quick, after) {
            Ok(l) => {
                let label = match after {
                    Some(a) => format!("{block}, timetagged cues sent {} s after activation", a.as_secs()),
                    None => block.to_string(),
                };
                body.push_str(&l.row(&label, &l.in_gap.to_string()));
                lat.push(l);
            }
            Err(e) => body.push_str(&format!("| {block} | failed: {e:#} | | | | | | |\n")),
        }
    }
    body.push('\n');
    if !lat.is_empty() {
        let blocks: Vec<String> = lat.iter().filter(|l| l.after.is_none()).map(Latency::immediate_headline).collect();
        let worst_landing = lat.iter().filter_map(|l| l.landing).map(|s| s.max).fold(0.0f64, f64::max);
        let settled = lat.iter().find(|l| l.after.is_some()).and_then(|l| l.landing).map(|s| s.max);
        headline.push(format!(
            "cue latency, immediate, in blocks: {}; timetagged landing error at most {} samples{}",
            blocks.join(", "),
            num(worst_landing),
            settled.map_or(String::new(), |m| format!(
                " ({} once the cue thread re-anchored its clock, 10 s after activation)",
                num(m)
            ))
        ));
        let before: Vec<f64> =
            lat.iter().filter(|l| l.after.is_none() && l.landing.is_some()).map(|l| l.landing_signed_p50).collect();
        if let (Some(after), Some(b)) = (lat.iter().find(|l| l.after.is_some()), Summary::of(&before))
            && (after.landing_signed_p50 - b.p50).abs() >= 2.0
        {
            findings.push(format!(
                "Timetagged cues land {} samples ({} µs) off during the first 10 s after activation, {} samples after \
                 (signed medians, negative = early): timetags convert through the cue thread's monotonic ↔ \
                 wall-clock anchor (plugin/src/wallclock.rs), refreshed every 10 s; a difference between the \
                 first 10 s and after points there.",
                num(b.p50),
                num(b.p50 / f64::from(SR) * 1e6),
                num(after.landing_signed_p50)
            ));
        }
        let all_matched = lat.iter().all(Latency::all_matched);
        targets.push(Target {
            target: "every latency cue arrives as MIDI (no loss at low rates)".into(),
            result: if all_matched { "all matched".into() } else { "some cues missing (see the table)".into() },
            met: Some(all_matched),
        });
    }
    parameter_latency(ctx, &lat, &mut body, &mut targets, &mut headline);
    Section { title: "6. Cue path".into(), body, targets, headline, findings }
}

/// The latency table for parameter cues (issue 19), beside the MIDI cues' (`midi`, the baseline).
fn parameter_latency(
    ctx: &Ctx,
    midi: &[Latency],
    body: &mut String,
    targets: &mut Vec<Target>,
    headline: &mut Vec<String>,
) {
    body.push_str(
        "### Parameter cues\n\nThe same runs with `/macro/1 i` (immediate) and `/macro/2 i` (timetagged) instead of \
         `/trigger/1` and `/trigger/2`: where the host got each Cue Macro's parameter value event (CLAP output \
         events), measured as above. Immediate parameter cues are set by the cue thread through the wrapper's \
         queue, which the host gets at the start of the next block; timetagged ones are placed by the audio thread \
         as MIDI cues are and set at their sample (PROTOCOL.md, \"Parameter changes\"). The MIDI cues' table above \
         is the baseline.\n\n| block | immediate: blocks p50 / p99 / max | send → block start ms p50 / p99 / max | \
         matched | timetagged: landing error samples p50 / p99 / max | signed p50 | matched | MIDI baseline: \
         landing error max |\n|---|---|---|---|---|---|---|---|\n",
    );
    let blocks: &[u32] = &[64, 512, 4096];
    let mut params = Vec::new();
    for &block in blocks {
        eprintln!("[bench] cue path: parameter cue latency at {block} samples");
        let baseline = midi.iter().find(|l| l.block == block && l.after.is_none()).and_then(|l| l.landing);
        match latency(Kind::Param, block, ctx.quick, None) {
            Ok(l) => {
                body.push_str(&l.row(&block.to_string(), &baseline.map_or("—".to_owned(), |s| num(s.max))));
                params.push((l, baseline));
            }
            Err(e) => body.push_str(&format!("| {block} | failed: {e:#} | | | | | | |\n")),
        }
    }
    body.push('\n');
    if params.is_empty() {
        return;
    }
    let all_matched = params.iter().all(|(l, _)| l.all_matched());
    targets.push(Target {
        target: "every parameter cue reaches the host as a parameter value".into(),
        result: if all_matched { "all matched".into() } else { "some cues missing (see the table)".into() },
        met: Some(all_matched),
    });
    // A timetagged parameter cue is placed as a MIDI cue is: its error is the MIDI baseline's,
    // within a sample of the harness's own reading of the block start.
    let worst = params.iter().filter_map(|(l, _)| l.landing).map(|s| s.max).fold(0.0f64, f64::max);
    let baseline = params.iter().filter_map(|(_, b)| *b).map(|s| s.max).fold(0.0f64, f64::max);
    let as_midi = worst <= baseline.max(1.0) + 1.0;
    targets.push(Target {
        target: "timetagged parameter cues land where MIDI cues do (landing error ≤ the MIDI baseline's + 1 sample)"
            .into(),
        result: format!("at most {} samples (MIDI: {})", num(worst), num(baseline)),
        met: Some(as_midi),
    });
    let immediate: Vec<String> = params.iter().map(|(l, _)| l.immediate_headline()).collect();
    headline.push(format!(
        "parameter cues: immediate, in blocks: {}; timetagged landing error at most {} samples (MIDI cues: {})",
        immediate.join(", "),
        num(worst),
        num(baseline)
    ));
}
