//! `osc-timecode listen`: `listen::handle_datagram` (client/src/listen.rs) for every datagram,
//! which decodes it, moves the chase (core/src/chase.rs) and writes the `--record` line, then
//! the readout `listen` shows between datagrams (`text_line`, `json_line`).
//!
//! Input: `datagram [#sep datagram]...` (fuzz/src/lib.rs), received 40 ms apart. Checks, besides
//! "never panics": every datagram has a record line, and it is one JSON object; the loss shown
//! is a fraction; the lines shown are one line each.
//!
//! Inputs up to 64 KiB (a datagram's size, `-max_len` in fuzz/run), run on a thread with the
//! plugin cue thread's 2 MiB stack (fuzz/src/lib.rs): a recursion a sender can drive overflows
//! here as it would there.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use libfuzzer_sys::fuzz_target;
use osc_timecode_client::listen::{handle_datagram, json_line, text_line};
use osc_timecode_core::chase::{Chase, ChaseConfig};
use osc_timecode_fuzz::{datagrams, with_cue_thread_stack};

/// 2026-01-01T00:00:00Z in ns since the Unix epoch: arrivals near the timetags of real seeds.
const ARRIVAL: i128 = 1_767_225_600_000_000_000;
/// Between two datagrams: a bit more than a frame at 25 fps.
const STEP: i128 = 40_000_000;

fuzz_target!(|data: &[u8]| with_cue_thread_stack(data, run));

/// One input, on the cue thread's stack.
fn run(data: &[u8]) {
    let mut chase = Chase::new(ChaseConfig { lock_frames: 3, freewheel_frames: 10 });
    let from = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9000);
    let mut arrival = ARRIVAL;
    for datagram in datagrams(data) {
        let line = handle_datagram(&mut chase, datagram, from, arrival, true).expect("every datagram is recorded");
        let record: serde_json::Value = serde_json::from_str(&line).expect("the record line is JSON");
        assert!(record.is_object(), "{line}");
        let readout = chase.tick(arrival + STEP / 2);
        assert!((0.0..=1.0).contains(&readout.loss()), "{readout:?}");
        let (text, json) = (text_line(&readout), json_line(&readout));
        assert!(!text.contains('\n') && !json.contains('\n'), "one line each: {text:?} {json:?}");
        arrival += STEP;
    }
    // Long after: freewheel, then lost.
    for later in [STEP * 3, STEP * 20, 3_600_000_000_000] {
        let readout = chase.tick(arrival + later);
        let _ = (text_line(&readout), json_line(&readout));
    }
}
