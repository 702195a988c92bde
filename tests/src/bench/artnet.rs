//! Section 9, Art-Net departure error (issue 16): ArtTimeCode carries no timestamp, so the plugin
//! holds each packet until its frame is heard, the instant the OSC timetag of the same frame
//! names. Measured: each packet's arrival at a loopback receiver minus that timetag (both on the
//! wall clock of this process), beside a baseline from the same run: each OSC bundle's arrival
//! minus its due time (timetag minus one block: the plugin's own emission timing, as in section
//! 2). Packets are read by `artnet_protocol` (not ours) and matched to the OSC frame with the
//! same label.
//!
//! Arrival times are the kernel's receive timestamps (`SO_TIMESTAMPNS`, on Linux), taken when
//! the datagram reaches the receiving socket, which on loopback is within the sender's `sendto`:
//! they measure when the plugin sent, not when the receiving thread got the CPU (on a machine
//! busy with other work a normal-priority receiver wakes milliseconds late). Elsewhere, the
//! receiving thread's clock reading.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, bail};
use osc_timecode_core::FrameRate;
use osc_timecode_core::protocol::{decode_timecode_packet, system_time_from_timetag};

use super::stats::{Summary, cell, num};
use super::{Ctx, PluginSetup, Section, Target, load_plugin, samples_ns, signed_secs_wall};
use crate::cues::free_loopback_addr;
use crate::transport::Transport;

/// Sample rate of the host.
const SR: u32 = 48_000;
/// Host block sizes.
const BLOCKS: [u32; 3] = [64, 1024, 4096];
/// Frame rates: an exact Type and a drop-frame one.
const RATES: [FrameRate; 2] = [FrameRate::FPS_25, FrameRate::FPS_29_97_DF];
/// The target: p99 of the departure error.
const TARGET_P99_US: f64 = 500.0;
/// How far before the timetag a packet may arrive without counting as early, µs: the plugin
/// pairs its monotonic and wall clocks within 10 µs (`ANCHOR_GAP / 2`, plugin/src/wallclock.rs).
const EARLY_SLACK_US: f64 = 20.0;

/// One configuration's errors, µs.
#[derive(Debug, Clone)]
pub struct Departures {
    /// Art-Net packets received.
    pub artnet: usize,
    /// OSC bundles received.
    pub osc: usize,
    /// Art-Net packets whose label no OSC bundle carried (should be 0).
    pub unmatched: usize,
    /// Art-Net packets that arrived before their frame's timetag (should be 0).
    pub early: usize,
    /// |Art-Net arrival − timetag|, µs.
    pub artnet_error: Option<Summary>,
    /// Median of the signed error (negative: early), µs.
    pub artnet_signed_p50: f64,
    /// |OSC arrival − due time| (timetag − one block), µs: the baseline.
    pub osc_error: Option<Summary>,
}

/// One datagram and when it reached the socket (wall clock).
#[derive(Debug)]
pub(super) struct Stamped {
    /// The bytes.
    pub(super) bytes: Vec<u8>,
    /// The kernel's receive timestamp (Linux), or the receiving thread's clock.
    pub(super) wall: SystemTime,
}

/// A loopback receiver that keeps every datagram with its receive timestamp, drained by a
/// thread of its own until [`StampedReceiver::finish`].
pub(super) struct StampedReceiver {
    /// Where it listens (127.0.0.1).
    pub(super) addr: SocketAddr,
    /// Set to end the draining thread.
    pub(super) stop: Arc<AtomicBool>,
    /// The draining thread, returning what it received.
    pub(super) thread: JoinHandle<anyhow::Result<Vec<Stamped>>>,
}

impl StampedReceiver {
    pub(super) fn bind() -> anyhow::Result<Self> {
        let socket = UdpSocket::bind("127.0.0.1:0").context("could not bind a loopback receiver")?;
        socket.set_read_timeout(Some(Duration::from_millis(20)))?;
        stamp::enable(&socket).context("could not turn on receive timestamps")?;
        let addr = socket.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new().name("bench-artnet-rx".into()).spawn(move || {
            let mut got = Vec::new();
            let mut buf = [0u8; 2048];
            while !flag.load(Ordering::Acquire) {
                match stamp::recv(&socket, &mut buf) {
                    Ok((n, wall)) => got.push(Stamped { bytes: buf[..n].to_vec(), wall }),
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock
                                | std::io::ErrorKind::TimedOut
                                | std::io::ErrorKind::Interrupted
                        ) => {}
                    Err(e) => return Err(e).context("the loopback receiver failed"),
                }
            }
            Ok(got)
        })?;
        Ok(Self { addr, stop, thread })
    }

    /// Waits `quiet` for stragglers, then stops and returns everything received.
    pub(super) fn finish(self, quiet: Duration) -> anyhow::Result<Vec<Stamped>> {
        std::thread::sleep(quiet);
        self.stop.store(true, Ordering::Release);
        self.thread.join().map_err(|_| anyhow::anyhow!("the loopback receiver panicked"))?
    }
}

/// Receive timestamps: the kernel's (`SO_TIMESTAMPNS`) on Linux.
#[cfg(target_os = "linux")]
mod stamp {
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;
    use std::time::{Duration, SystemTime};

    /// Asks the kernel to stamp every datagram `socket` receives.
    pub fn enable(socket: &UdpSocket) -> std::io::Result<()> {
        let on: libc::c_int = 1;
        // SAFETY: a valid socket descriptor, and a pointer to an int of the size given, which
        // the call only reads.
        let r = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPNS,
                (&raw const on).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
    }

    /// One datagram into `buf`: its length and the kernel's timestamp (the read time if the
    /// kernel gave none).
    pub fn recv(socket: &UdpSocket, buf: &mut [u8]) -> std::io::Result<(usize, SystemTime)> {
        let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
        // Room for one timespec control message, aligned for cmsghdr.
        let mut control = [0u64; 16];
        // SAFETY: msghdr is plain data; all-zero is a valid (empty) value, filled in below.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &raw mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = size_of_val(&control);
        // SAFETY: `msg` points at `iov` (into `buf`) and `control`, both alive and writable for
        // the lengths given, for the duration of the call.
        let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &raw mut msg, 0) };
        let Ok(n) = usize::try_from(n) else { return Err(std::io::Error::last_os_error()) };
        let mut wall = SystemTime::now();
        // SAFETY: `msg` was filled by recvmsg; the CMSG_* helpers walk the control buffer within
        // `msg_controllen`, and an SCM_TIMESTAMPNS message carries one timespec (read unaligned).
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS {
                    let ts = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::timespec>());
                    if let (Ok(s), Ok(ns)) = (u64::try_from(ts.tv_sec), u32::try_from(ts.tv_nsec)) {
                        wall = SystemTime::UNIX_EPOCH + Duration::new(s, ns);
                    }
                }
                cmsg = libc::CMSG_NXTHDR(&raw const msg, cmsg);
            }
        }
        Ok((n, wall))
    }
}

/// Elsewhere: the receiving thread's clock.
#[cfg(not(target_os = "linux"))]
mod stamp {
    use std::net::UdpSocket;
    use std::time::SystemTime;

    pub fn enable(_: &UdpSocket) -> std::io::Result<()> {
        Ok(())
    }

    pub fn recv(socket: &UdpSocket, buf: &mut [u8]) -> std::io::Result<(usize, SystemTime)> {
        let n = socket.recv(buf)?;
        Ok((n, SystemTime::now()))
    }
}

/// (hours, minutes, seconds, frames) of an Art-Net packet, as artnet_protocol reads it.
pub(super) fn artnet_label(p: &Stamped) -> anyhow::Result<(u8, u8, u8, u8)> {
    match artnet_protocol::ArtCommand::from_buffer(&p.bytes) {
        Ok(artnet_protocol::ArtCommand::OpTimeCode(tc)) => Ok((tc.hours, tc.minutes, tc.seconds, tc.frames)),
        other => bail!("the plugin sent an Art-Net packet artnet_protocol reads as {other:?}"),
    }
}

/// Plays `seconds` at `rate` in blocks of `block`, paced in real time, with one OSC and one
/// Art-Net target, and measures both.
pub fn departures(rate: FrameRate, block: u32, seconds: f64) -> anyhow::Result<Departures> {
    let osc = StampedReceiver::bind()?;
    let art = StampedReceiver::bind()?;
    let mut plugin =
        load_plugin(&PluginSetup { targets: vec![osc.addr], rate, output: true, cues: free_loopback_addr() });
    let art_target = art.addr.to_string();
    plugin.update_settings(|s| {
        s.insert("artnet".into(), serde_json::json!({ "targets": [art_target], "stream_id": 0 }));
    });
    plugin.activate(SR, block);
    let mut transport = Transport::playing_from(SR, 0);
    let blocks = (seconds * f64::from(SR) / f64::from(block)).ceil() as u64;
    plugin.run_realtime(&mut transport, blocks * u64::from(block), block);
    let osc_packets = osc.finish(Duration::from_millis(500))?;
    let art_packets = art.finish(Duration::ZERO)?;
    plugin.deactivate();
    let block_time = samples_ns(i64::from(block), SR);
    let mut heard = HashMap::new();
    let mut osc_error = Vec::new();
    for p in &osc_packets {
        let Ok((Some(tag), msg)) = decode_timecode_packet(&p.bytes) else {
            bail!("the plugin sent a packet that is not a timecode bundle")
        };
        let tag = system_time_from_timetag(tag);
        let tc = msg.timecode;
        heard.insert((tc.hours(), tc.minutes(), tc.seconds(), tc.frames()), tag);
        osc_error.push(signed_secs_wall(tag - block_time, p.wall) * 1e6);
    }
    let (mut errors, mut unmatched) = (Vec::new(), 0);
    for p in &art_packets {
        match heard.get(&artnet_label(p)?) {
            Some(tag) => errors.push(signed_secs_wall(*tag, p.wall) * 1e6),
            None => unmatched += 1,
        }
    }
    Ok(Departures {
        artnet: art_packets.len(),
        osc: osc_packets.len(),
        unmatched,
        early: errors.iter().filter(|e| **e < -EARLY_SLACK_US).count(),
        artnet_error: Summary::of_abs(&errors),
        artnet_signed_p50: Summary::of(&errors).map_or(f64::NAN, |s| s.p50),
        osc_error: Summary::of_abs(&osc_error),
    })
}

/// Runs section 9.
pub fn run(ctx: &Ctx) -> Section {
    let seconds = if ctx.quick { 3.0 } else { 15.0 };
    let mut body = format!(
        "Loopback receivers stamping arrivals with the kernel's receive time (`SO_TIMESTAMPNS`: when the datagram \
         reached the socket, not when the receiving thread woke), 48 kHz host paced like an audio callback (as in section 2), {seconds} s per \
         configuration, output latency 0, one OSC and one Art-Net target. Art-Net error = packet arrival − the OSC \
         timetag of the same frame (when the frame is heard: its due time + one block); the baseline is the OSC \
         bundle's arrival − its due time (timetag − one block) in the same run. Absolute errors in µs as p50 / p99 / \
         max; \"signed p50\" keeps the sign (negative = early); \"early\" counts packets that arrived more than \
         20 µs (the clocks' pairing error) before their frame was heard.\n\n| fps | block | Art-Net received / \
         OSC | unmatched | early | Art-Net error µs p50 / p99 / max | signed p50 µs | OSC arrival − due µs p50 / \
         p99 / max |\n|---|---|---|---|---|---|---|---|\n"
    );
    let mut worst: Option<f64> = None;
    let mut early = 0;
    let mut failures = Vec::new();
    for rate in RATES {
        for block in BLOCKS {
            eprintln!("[bench] artnet: {} fps, {block} samples", rate.name());
            match departures(rate, block, seconds).context("Art-Net departures") {
                Ok(d) => {
                    body.push_str(&format!(
                        "| {} | {block} | {} / {} | {} | {} | {} | {} | {} |\n",
                        rate.name(),
                        d.artnet,
                        d.osc,
                        d.unmatched,
                        d.early,
                        cell(d.artnet_error),
                        num(d.artnet_signed_p50),
                        cell(d.osc_error)
                    ));
                    early += d.early;
                    if let Some(s) = d.artnet_error {
                        worst = Some(worst.map_or(s.p99, |w: f64| w.max(s.p99)));
                    }
                }
                Err(e) => {
                    body.push_str(&format!("| {} | {block} | skipped: {e:#} | | | | | |\n", rate.name()));
                    failures.push(format!("{} fps/{block}", rate.name()));
                }
            }
        }
    }
    body.push_str(
        "\nThe network thread sleeps until 200 µs before a packet's moment and spins the rest \
         (`artnet::SPIN`, plugin/src/network/artnet.rs); the OSC baseline has no such spin (it leaves within one \
         250 µs poll of its due time).\n\n",
    );
    let mut targets = Vec::new();
    let mut headline = Vec::new();
    let mut findings = Vec::new();
    if let Some(w) = worst {
        targets.push(Target {
            target: "Art-Net departure error against the heard time: p99 ≤ 0.5 ms".into(),
            result: format!("worst p99 {} µs over 25 and 29.97 DF fps, 64/1024/4096-sample blocks", num(w)),
            met: Some(w <= TARGET_P99_US && failures.is_empty()),
        });
        headline.push(format!("Art-Net departure error p99: worst {} µs; {early} packets early", num(w)));
    }
    if early > 0 {
        findings.push(format!(
            "{early} Art-Net packets arrived before the OSC timetag of their frame (plugin/src/network/artnet.rs holds \
             each until that instant; the two clocks are paired within 10 µs, so more than that is a defect)."
        ));
    }
    Section { title: "9. Art-Net departure error".into(), body, targets, headline, findings }
}
