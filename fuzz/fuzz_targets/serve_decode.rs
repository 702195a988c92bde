//! `osc-timecode serve`'s listen socket: `Receiver::handle_datagram`
//! (client/src/serve/receiver.rs), which checks each datagram as the plugin does and answers
//! cues, triggers, `/status` and `/transport/play|stop|locate`, changing the shared transport.
//!
//! Input: `[settings byte] [sender byte] datagram [#sep datagram]...` (fuzz/src/lib.rs). Checks,
//! besides "never panics": every reply encodes as the receive loop sends it; every printed line
//! is one line; the transport stays at a frame it can label.
//!
//! Inputs up to 64 KiB (a datagram's size, `-max_len` in fuzz/run), run on a thread with the
//! plugin cue thread's 2 MiB stack (fuzz/src/lib.rs): a recursion a sender can drive overflows
//! here as it would there.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use osc_timecode_client::serve::Shared;
use osc_timecode_client::serve::receiver::Receiver;
use osc_timecode_client::serve::transport::{Now, Transport};
use osc_timecode_core::cue::{AllowList, parse_allow_entry};
use osc_timecode_core::{FrameRate, Timecode};
use osc_timecode_fuzz::{Knobs, TOKEN, datagrams, receiver_input, sender, with_cue_thread_stack};
use rosc::OscPacket;

fuzz_target!(|data: &[u8]| with_cue_thread_stack(data, run));

/// One input, on the cue thread's stack.
fn run(data: &[u8]) {
    let Some((knobs, from, rest)) = receiver_input(data) else { return };
    let knobs = Knobs::from_byte(knobs);
    let from = sender(from);
    let rate = if knobs.named_or_drop_frame { FrameRate::FPS_29_97_DF } else { FrameRate::FPS_25 };
    // 01:00:00 at the rate: where a show usually starts.
    let start = Timecode::parse(if rate.is_drop() { "01:00:00;00" } else { "01:00:00:00" }, rate)
        .expect("a valid label")
        .to_frame();
    let shared = Arc::new(Shared::new(Transport::new(rate, start, knobs.quantise_or_rolling, Now::read())));
    let allow = if knobs.allow_all {
        // PANIC: constant, valid ranges.
        AllowList::new(["0.0.0.0/0", "::/0"].map(|r| parse_allow_entry(r).expect("a range")).to_vec())
    } else {
        AllowList::loopback()
    };
    let mut receiver = Receiver::new(allow, knobs.token.then(|| TOKEN.to_owned()), shared.clone());
    for datagram in datagrams(rest) {
        for outcome in receiver.handle_datagram(datagram, from) {
            if let Some(reply) = outcome.reply {
                rosc::encoder::encode(&OscPacket::Message(reply)).expect("replies encode");
            }
            if let Some(line) = outcome.line {
                assert!(!line.contains('\n'), "one line: {line:?}");
            }
        }
    }
    let transport = *shared.transport.lock().expect("not poisoned");
    let _ = Timecode::from_frame(transport.position(std::time::Instant::now()), transport.rate).label();
}
