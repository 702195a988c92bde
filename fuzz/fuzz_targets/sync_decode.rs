//! `/sync/ping` and `/sync/pong` as the masters and `listen` read them
//! (`osc_timecode_core::clocksync`): anyone can send anything to a master's timecode socket and to
//! `listen`'s port, and rosc's decoder recurses into nested bundles, so the shape is checked
//! first.
//!
//! Input: one datagram. Checks, besides "never panics": whatever decodes as a ping or a pong is 56
//! bytes and encodes back to itself at that length (the answer is never bigger than what was
//! sent), and
//! the estimator takes any exchange built from it without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use osc_timecode_core::clocksync::{ClockSync, Exchange, PACKET_LEN, Ping, Pong};

fuzz_target!(|data: &[u8]| {
    if let Ok(ping) = Ping::decode(data) {
        assert_eq!(data.len(), PACKET_LEN);
        let pong = Pong::answer(
            ping,
            rosc::OscTime { seconds: 1, fractional: 2 },
            rosc::OscTime { seconds: 3, fractional: 4 },
            0,
        );
        assert_eq!(pong.encode().len(), data.len(), "a pong is as long as its ping");
    }
    if let Ok(pong) = Pong::decode(data) {
        // Padding bytes need not be zero on the wire: the fields round-trip, at the same length.
        let again = pong.encode();
        assert_eq!((again.len(), Pong::decode(&again)), (data.len(), Ok(pong)), "a pong encodes back to itself");
        let t = |o: rosc::OscTime| i128::from(o.seconds) * 1_000_000_000 + i128::from(o.fractional);
        let mut sync = ClockSync::new();
        let t1 = i128::from(pong.origin);
        sync.on_exchange(Exchange {
            t1,
            t2: t(pong.received),
            t3: t(pong.sent),
            t4: t1.saturating_add(1_000_000),
            epoch: pong.epoch,
        });
        let _ = sync.end_burst();
        let _ = sync.state(t1);
        let _ = sync.to_local(t(pong.sent), t1);
    }
});
