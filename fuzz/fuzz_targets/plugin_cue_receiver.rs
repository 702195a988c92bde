//! The plugin's cue input: `Dispatcher::handle_datagram` (plugin/src/cues/receiver.rs), what the
//! cue thread does with every datagram it receives (allow-list, packet shape, token, arguments,
//! retries, mapping, timetags, schedule, ring) minus the socket.
//!
//! Input: `[settings byte] [sender byte] datagram [#sep datagram]...` (fuzz/src/lib.rs). Checks,
//! besides "never panics": every reply is an `/ack` or a `/status` that encodes; every cue
//! accepted reaches the audio thread's ring once the schedule is released, with 1 to MAX_FANOUT
//! actions, or (immediate parameter cues) a wrapper's setter with one of our parameter IDs and a
//! value in 0–1; every message counted as received has one outcome, once: accepted, dropped, or a
//! `/status` query answered or refused.
//!
//! Inputs up to 64 KiB (a datagram's size, `-max_len` in fuzz/run), run on a thread with the
//! plugin cue thread's 2 MiB stack (fuzz/src/lib.rs): a recursion a sender can drive overflows
//! here as it would there.
#![no_main]

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use nice_plug::prelude::{RemoteParamError, RemoteParamSetter};
use osc_timecode_core::cue::{Ack, MAX_FANOUT, parse_allow_entry};
use osc_timecode_core::protocol::address;
use osc_timecode_fuzz::{Knobs, TOKEN, datagrams, receiver_input, sender, with_cue_thread_stack};
use osc_timecode_plugin::cues::receiver::{Dispatcher, ParamSide};
use osc_timecode_plugin::cues::{CueStats, DropReason};
use osc_timecode_plugin::params::{PARAM_IDS, TimecodeParams};
use osc_timecode_plugin::settings::Settings;
use osc_timecode_plugin::settings::cues::{CueSettings, Mappings};
use osc_timecode_plugin::settings::values::{AllowEntries, AllowEntry};
use rosc::OscPacket;

/// Named mappings: one of each kind, names that patterns can select several of.
const NAMED: &str = r#"[
    {"address": "/cue/intro", "kind": "note", "channel": 2, "key": 60, "velocity": 100, "length_ms": 250},
    {"address": "/cue/hold", "kind": "note", "channel": 16, "key": 0, "length_ms": 0},
    {"address": "/cue/off", "kind": "note_off", "channel": 1, "key": 127},
    {"address": "/trigger/fader", "kind": "cc", "channel": 3, "number": 7},
    {"address": "/cue/blackout", "kind": "program", "channel": 1, "program": 12},
    {"address": "/cue/stop", "kind": "param", "param": "output", "value": 0.0},
    {"address": "/cue/level", "kind": "param", "param": "macro2", "ramp_ms": 50}
]"#;

/// Parameter changes the fuzzed wrapper takes before its queue is "full".
const SETTER_ROOM: usize = 64;

/// A wrapper's `RemoteParamSetter`: takes [`SETTER_ROOM`] changes, then refuses (`QueueFull`).
#[derive(Default)]
struct Setter(std::sync::atomic::AtomicUsize);

impl RemoteParamSetter for Setter {
    fn set_parameter_normalized(&self, param_id: &str, normalized: f32) -> Result<(), RemoteParamError> {
        assert!(PARAM_IDS.contains(&param_id), "a parameter of ours: {param_id}");
        assert!((0.0..=1.0).contains(&normalized), "a normalized value: {normalized}");
        let taken = self.0.fetch_add(1, Ordering::Relaxed);
        if taken >= SETTER_ROOM { Err(RemoteParamError::QueueFull) } else { Ok(()) }
    }
}

fn settings(knobs: Knobs) -> CueSettings {
    let mut s = CueSettings { quantise: knobs.quantise_or_rolling, defaults: !knobs.no_defaults, ..Default::default() };
    if knobs.token {
        // PANIC: a constant, valid token.
        s.token = Some(TOKEN.parse().expect("a valid token"));
    }
    if knobs.named_or_drop_frame {
        // PANIC: a constant, valid mapping table.
        s.map = serde_json::from_str::<Mappings>(NAMED).expect("valid named mappings");
    }
    if knobs.allow_all {
        // PANIC: constant, valid, different ranges.
        let all = ["0.0.0.0/0", "::/0"].map(|r| AllowEntry(parse_allow_entry(r).expect("a range"))).to_vec();
        s.allow = AllowEntries::new(all).expect("different ranges");
    }
    if knobs.no_dedupe {
        s.dedupe_ms = 0;
    }
    s
}

fuzz_target!(|data: &[u8]| with_cue_thread_stack(data, run));

/// One input, on the cue thread's stack.
fn run(data: &[u8]) {
    let Some((knobs, from, rest)) = receiver_input(data) else { return };
    let knobs = Knobs::from_byte(knobs);
    let from = sender(from);
    let stats = Arc::new(CueStats::default());
    let (producer, mut consumer) = rtrb::RingBuffer::new(if knobs.small_ring { 4 } else { 1024 });
    let latency_ms = if knobs.negative_latency { -35.5 } else { 12.0 };
    let start = Instant::now();
    let mut dispatcher = Dispatcher::new(producer, stats.clone(), settings(knobs), latency_ms);
    // Parameter cues (`/macro/N`, the `param` entries) reach a setter, ramps included.
    let side = ParamSide { setter: Some(Arc::new(Setter::default())), returns: None };
    dispatcher.set_params_with(side, Arc::new(TimecodeParams::new(Settings::default())));
    let mut replies = Vec::new();
    let mut popped = 0u64;
    for (i, datagram) in datagrams(rest).into_iter().enumerate() {
        // 300 ms apart: retries within the dedupe window, schedules released on the way.
        let now = start + Duration::from_millis(300 * i as u64);
        dispatcher.release(now);
        dispatcher.run_automation(now);
        replies.clear();
        dispatcher.handle_datagram(datagram, from, now, &mut replies);
        for reply in &replies {
            assert!(reply.addr == address::ACK || reply.addr == address::STATUS, "reply to {}", reply.addr);
            if reply.addr == address::ACK {
                assert!(Ack::from_osc(reply).is_some(), "an /ack that does not read back: {reply:?}");
            }
            rosc::encoder::encode(&OscPacket::Message(reply.clone())).expect("replies encode");
        }
        // The audio thread drains the ring (a small ring fills first when it does not).
        if !knobs.small_ring {
            while let Ok(cue) = consumer.pop() {
                assert!((1..=MAX_FANOUT).contains(&cue.actions().len()), "{cue:?}");
                popped += 1;
            }
        }
    }
    // Everything accepted reaches the ring: release the schedule far in the future.
    let later = start + Duration::from_secs(7200);
    while dispatcher.scheduled() > 0 {
        dispatcher.release(later);
        let before = popped;
        while let Ok(cue) = consumer.pop() {
            assert!((1..=MAX_FANOUT).contains(&cue.actions().len()), "{cue:?}");
            popped += 1;
        }
        assert!(popped > before || dispatcher.scheduled() == 0, "the schedule does not drain");
    }
    while consumer.pop().is_ok() {
        popped += 1;
    }
    // Immediate parameter-only cues are applied on this thread (counted `applied` at once), all
    // others go to the ring.
    let applied_here = stats.applied.load(Ordering::Relaxed);
    assert_eq!(stats.accepted.load(Ordering::Relaxed), popped + applied_here, "accepted = in the ring + set here");
    // Every message counted as received has one outcome, once (`CueStats::received`): accepted,
    // dropped for one reason, or a `/status` query answered or refused.
    let dropped: u64 = DropReason::ALL.iter().map(|&r| stats.dropped(r)).sum();
    let status = stats.status_answered.load(Ordering::Relaxed) + stats.status_refused.load(Ordering::Relaxed);
    assert_eq!(
        popped + applied_here + dropped + status,
        stats.received.load(Ordering::Relaxed),
        "accepted + dropped + status answered or refused = received"
    );
}
