//! Section 7, memory: resident memory (`VmRSS`) and its peak (`VmHWM`) from `/proc`, for the
//! plugin instance (a fresh child process of the bench: before loading, loaded, active, after
//! playing, after a flood of cues) and for `osc-timecode listen` and `serve`, idle and under a
//! flood of 100 000 datagrams.

use std::io::Write as _;
use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use osc_timecode_core::FrameRate;
use osc_timecode_core::protocol::{TimecodeMessage, encode_timecode_bundle};

use super::stats::num;
use super::{Ctx, KillOnDrop, Section, Target, cue_plugin};
use crate::bundle::BUNDLE_DIR_ENV;
use crate::cues::{CueSender, flood, free_loopback_addr, timetag};
use crate::transport::Transport;

/// Datagrams in a flood.
const FLOOD: u64 = 100_000;

/// `VmRSS` and `VmHWM` of a process, KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mem {
    /// Resident now.
    pub rss: u64,
    /// Peak resident so far.
    pub hwm: u64,
}

/// Reads `VmRSS` and `VmHWM` from a `/proc/PID/status` text.
pub fn parse_status(text: &str) -> Option<Mem> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
    };
    Some(Mem { rss: field("VmRSS:")?, hwm: field("VmHWM:")? })
}

/// The memory of process `pid` (`"self"` for this one).
pub fn mem_of(pid: &str) -> anyhow::Result<Mem> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("could not read {path}"))?;
    parse_status(&text).with_context(|| format!("no VmRSS/VmHWM in {path}"))
}

/// The plugin child: prints one `LABEL RSS HWM` line per stage.
pub fn plugin_child() -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let mut stage = |label: &str| -> anyhow::Result<()> {
        let m = mem_of("self")?;
        writeln!(out, "{label} {} {}", m.rss, m.hwm)?;
        Ok(())
    };
    stage("before-load")?;
    let (_sink, listen, mut plugin) = cue_plugin()?;
    stage("loaded")?;
    plugin.activate(48_000, 512);
    CueSender::new(listen).wait_ready();
    stage("active")?;
    let mut transport = Transport::playing_from(48_000, 0);
    // The harness records every block; its own log grows a little (a few hundred KiB at most).
    plugin.run_realtime(&mut transport, 48_000 * 5, 512);
    stage("played-5s")?;
    let stop = AtomicBool::new(false);
    let record_kib = std::thread::scope(|s| {
        let flooder = s.spawn(|| flood(listen, FLOOD, &stop, 7));
        let report = plugin.run_realtime(&mut transport, 48_000 * 5, 512);
        let _ = flooder.join();
        // What the harness itself held for this run (its block log and every MIDI event).
        (report.events.capacity() * std::mem::size_of::<crate::clap::OutputEvent>()
            + report.block_log.capacity() * std::mem::size_of::<crate::clap::BlockRecord>())
            / 1024
    });
    stage("after-flood")?;
    plugin.deactivate();
    stage("deactivated")?;
    writeln!(out, "harness-record {record_kib} 0")?;
    Ok(())
}

/// Floods `to` with `n` valid `/sync/timecode` bundles (random frames).
fn timecode_flood(to: std::net::SocketAddr, n: u64) -> anyhow::Result<()> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    let mut buf = Vec::new();
    let mut rng = crate::rng::Rng::new(11);
    let now = std::time::SystemTime::now();
    for seq in 0..n as i64 {
        let msg = TimecodeMessage::new(rng.range(0, 2_000_000), FrameRate::FPS_25, true, seq, false, false);
        encode_timecode_bundle(&msg, timetag(now), &mut buf);
        let _ = socket.send_to(&buf, to);
    }
    Ok(())
}

/// Runs section 7.
pub fn run(ctx: &Ctx) -> Section {
    let mut body = String::from(
        "Resident memory (`VmRSS`) and its peak (`VmHWM`) from `/proc/PID/status`, in KiB. The plugin runs in a fresh \
         child process of the bench, so every figure includes the bench itself: the differences between stages are \
         what the plugin adds, plus what the harness records of each run (shown for the flood run); the flood is 100 \
         000 datagrams from one thread as fast as it goes: for the plugin and `serve`, the cue flood of the host tests \
         (valid, refused and garbage cues); for `listen`, valid `/sync/timecode` bundles with random frames.\n\n| \
         process | stage | RSS KiB | peak KiB |\n|---|---|---|---|\n",
    );
    let mut targets = Vec::new();
    let mut headline = Vec::new();
    let findings = Vec::new();
    eprintln!("[bench] memory: plugin");
    let plugin = (|| -> anyhow::Result<Vec<(String, Mem)>> {
        let output = Command::new(&ctx.exe)
            .args(["--child", "memory"])
            .env(BUNDLE_DIR_ENV, &ctx.bundle_dir)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .context("could not run the memory child")?;
        if !output.status.success() {
            bail!("the memory child failed ({})", output.status);
        }
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                match w.as_slice() {
                    [label, rss, hwm] => Ok((label.to_string(), Mem { rss: rss.parse()?, hwm: hwm.parse()? })),
                    _ => bail!("bad line {l:?}"),
                }
            })
            .collect()
    })();
    match &plugin {
        Ok(stages) => {
            for (label, m) in stages {
                if label == "harness-record" {
                    body.push_str(&format!(
                        "| bench + plugin | (the harness's own record of the flood run: its block log and every MIDI \
                         event, freed after the run; the allocator may keep the pages) | {} | — |\n",
                        m.rss
                    ));
                } else {
                    body.push_str(&format!("| bench + plugin | {label} | {} | {} |\n", m.rss, m.hwm));
                }
            }
            let get = |name: &str| stages.iter().find(|(l, _)| l == name).map(|(_, m)| *m);
            if let (Some(before), Some(active), Some(played), Some(flooded)) =
                (get("before-load"), get("active"), get("played-5s"), get("after-flood"))
            {
                let record = get("harness-record").map_or(0, |m| m.rss);
                let growth = flooded.rss.saturating_sub(played.rss);
                let verdict = if record >= growth { ", more than the growth: the plugin kept nothing" } else { "" };
                headline.push(format!(
                    "memory: the plugin instance adds {} KiB loaded and active; +{} KiB after 5 s of play, +{} KiB \
                     after a 100k-datagram cue flood (the harness's record of that run was {record} KiB{verdict})",
                    active.rss.saturating_sub(before.rss),
                    played.rss.saturating_sub(active.rss),
                    growth
                ));
            }
        }
        Err(e) => body.push_str(&format!("| bench + plugin | failed: {e:#} | | |\n")),
    }
    eprintln!("[bench] memory: serve and listen");
    let clients = (|| -> anyhow::Result<Vec<(String, String, Mem)>> {
        let serve_listen = free_loopback_addr();
        let listen_bind = free_loopback_addr();
        let serve = KillOnDrop(
            Command::new(&ctx.client)
                .args(["serve", "--rate", "25", "--quiet"])
                .args(["--to", &listen_bind.to_string(), "--listen", &serve_listen.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("could not start serve")?,
        );
        let listen = KillOnDrop(
            Command::new(&ctx.client)
                .args(["listen", "--json", "--bind", &listen_bind.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("could not start listen")?,
        );
        let (sp, lp) = (serve.0.id().to_string(), listen.0.id().to_string());
        std::thread::sleep(Duration::from_secs(if ctx.quick { 2 } else { 5 }));
        let mut rows = vec![
            ("serve".to_owned(), "idle (rolling, 25 fps, one target)".to_owned(), mem_of(&sp)?),
            ("listen".to_owned(), "idle (locked to serve)".to_owned(), mem_of(&lp)?),
        ];
        let started = Instant::now();
        let stop = AtomicBool::new(false);
        let flooded = std::thread::scope(|s| {
            let a = s.spawn(|| flood(serve_listen, FLOOD, &stop, 3));
            let b = s.spawn(|| timecode_flood(listen_bind, FLOOD));
            let _ = a.join();
            b.join().unwrap_or_else(|_| Err(anyhow::anyhow!("flood thread panicked")))
        });
        flooded?;
        let secs = started.elapsed().as_secs_f64();
        std::thread::sleep(Duration::from_millis(500));
        rows.push(("serve".to_owned(), format!("after a 100k cue flood ({} s)", num(secs)), mem_of(&sp)?));
        rows.push(("listen".to_owned(), format!("after a 100k timecode flood ({} s)", num(secs)), mem_of(&lp)?));
        Ok(rows)
    })();
    match &clients {
        Ok(rows) => {
            for (p, stage, m) in rows {
                body.push_str(&format!("| `{p}` | {stage} | {} | {} |\n", m.rss, m.hwm));
            }
            let find = |p: &str, idle: bool| {
                rows.iter().find(|(n, s, _)| n == p && s.starts_with("idle") == idle).map(|r| r.2)
            };
            if let (Some(si), Some(sf), Some(li), Some(lf)) =
                (find("serve", true), find("serve", false), find("listen", true), find("listen", false))
            {
                headline.push(format!(
                    "memory: serve {} KiB idle, peak {} KiB under a flood; listen {} KiB idle, peak {} KiB under a \
                     flood",
                    si.rss, sf.hwm, li.rss, lf.hwm
                ));
                let bounded = sf.hwm < si.rss + 4096 && lf.hwm < li.rss + 4096;
                targets.push(Target {
                    target: "client memory bounded under a flood (info: no target in the issue)".into(),
                    result: format!(
                        "serve +{} KiB, listen +{} KiB peak over idle",
                        sf.hwm.saturating_sub(si.rss),
                        lf.hwm.saturating_sub(li.rss)
                    ),
                    met: Some(bounded),
                });
            }
        }
        Err(e) => body.push_str(&format!("| clients | failed: {e:#} | | |\n")),
    }
    body.push('\n');
    Section { title: "7. Memory".into(), body, targets, headline, findings }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rss_and_peak() {
        let text = "Name:\tx\nVmPeak:\t 9999 kB\nVmHWM:\t  2000 kB\nVmRSS:\t  1234 kB\n";
        assert_eq!(parse_status(text), Some(Mem { rss: 1234, hwm: 2000 }));
        assert_eq!(parse_status("VmRSS:\t1 kB\n"), None);
    }
}
