//! The monotonic clock (`Instant`, what blocks and deadlines are measured in) against the wall
//! clock (`SystemTime`, what OSC timetags say), for the network thread (frame → timetag) and the
//! cue thread (timetag → moment).
//!
//! The two are tied by an anchor: one reading of each, paired. The wall-clock reading is taken
//! between two monotonic ones and paired with their midpoint, so the pair is off by at most half
//! the gap between them (tens of nanoseconds); reading them in turn with work in between put the
//! cue thread's first anchor tens of microseconds apart, and timetagged cues landed 3–4 samples
//! early until it was refreshed. A thread preempted between the readings (the cue thread runs at
//! the lowest priority, so on a busy machine it is, for milliseconds) widens the gap and the error
//! with it: a cue landed 1.6 ms early in CI. So the pair is read until the gap is at most
//! [`ANCHOR_GAP`], [`ANCHOR_TRIES`] times at most, and the tightest reading is kept. The anchor
//! is refreshed every [`REANCHOR_EVERY`] to follow NTP slewing the wall clock.

use std::time::{Duration, Instant, SystemTime};

use crate::settings::MAX_OUTPUT_LATENCY_MS;

/// How often the anchor is refreshed.
pub const REANCHOR_EVERY: Duration = Duration::from_secs(10);

/// A reading whose monotonic readings are at most this far apart is taken at once (its error is
/// at most half of it: 10 µs, half a sample at 48 kHz).
pub const ANCHOR_GAP: Duration = Duration::from_micros(20);

/// Readings taken at most for one anchor (each is three vDSO clock reads, well under a
/// microsecond when the thread is not preempted).
pub const ANCHOR_TRIES: usize = 16;

/// Converts between the two clocks. `Copy`; owned by one thread (`[network-thread]` or
/// `[cue-thread]`).
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    /// A monotonic moment and the wall-clock time at it.
    anchor: (Instant, SystemTime),
}

impl Default for WallClock {
    fn default() -> Self {
        Self::now()
    }
}

impl WallClock {
    /// Anchored now: the tightest of up to [`ANCHOR_TRIES`] readings.
    pub fn now() -> Self {
        Self::tightest((0..ANCHOR_TRIES).map(|_| {
            let before = Instant::now();
            let wall = SystemTime::now();
            (before, wall, Instant::now())
        }))
    }

    /// The anchor from the first of `readings` (monotonic before, wall, monotonic after) whose
    /// gap is at most [`ANCHOR_GAP`], or else the one with the smallest gap. Readings are consumed
    /// only until one is tight enough.
    fn tightest(readings: impl Iterator<Item = (Instant, SystemTime, Instant)>) -> Self {
        let mut best: Option<(Duration, Instant, SystemTime)> = None;
        for (before, wall, after) in readings {
            let gap = after.saturating_duration_since(before);
            if best.is_none_or(|(g, ..)| gap < g) {
                best = Some((gap, before + gap / 2, wall));
            }
            if gap <= ANCHOR_GAP {
                break;
            }
        }
        let (_, instant, wall) = best.unwrap_or_else(|| (Duration::ZERO, Instant::now(), SystemTime::now()));
        Self { anchor: (instant, wall) }
    }

    /// Re-anchors when the anchor is [`REANCHOR_EVERY`] old at `now`.
    pub fn refresh_if_due(&mut self, now: Instant) {
        if now.saturating_duration_since(self.anchor.0) >= REANCHOR_EVERY {
            *self = Self::now();
        }
    }

    /// The wall-clock time at `at`, moved by `latency_ms` (later if positive; see `latency_of`
    /// for what it does with values the settings readers refuse).
    pub fn wall_at(&self, at: Instant, latency_ms: f64) -> SystemTime {
        let (anchor_instant, anchor_wall) = self.anchor;
        let base = if at >= anchor_instant {
            anchor_wall + (at - anchor_instant)
        } else {
            anchor_wall - (anchor_instant - at)
        };
        let latency = latency_of(latency_ms);
        if latency_ms >= 0.0 { base + latency } else { base - latency }
    }

    /// The monotonic moment of the wall-clock time `wall` moved by `latency_ms` (earlier if
    /// positive: the inverse of [`Self::wall_at`]). A time before what `Instant` can express is
    /// the earliest it can (so a cue for it is late); `None` beyond what it can express.
    pub fn instant_at(&self, wall: SystemTime, latency_ms: f64) -> Option<Instant> {
        let (anchor_instant, anchor_wall) = self.anchor;
        let latency = latency_of(latency_ms);
        let wall = if latency_ms >= 0.0 { wall.checked_sub(latency) } else { wall.checked_add(latency) };
        let wall = wall.unwrap_or(anchor_wall);
        match wall.duration_since(anchor_wall) {
            Ok(ahead) => anchor_instant.checked_add(ahead),
            Err(behind) => Some(anchor_instant.checked_sub(behind.duration()).unwrap_or(anchor_instant)),
        }
    }
}

/// `latency_ms` as a duration: its size, clamped to the setting's range
/// ([`MAX_OUTPUT_LATENCY_MS`]), and none for NaN. The settings readers refuse such values; this
/// keeps one that reached here anyway (a `Settings` built in code) from moving timetags: `f64::min`
/// made NaN 60 s, and `NaN >= 0.0` being false made it 60 s *earlier* (issue 14).
fn latency_of(latency_ms: f64) -> Duration {
    if latency_ms.is_nan() {
        return Duration::ZERO;
    }
    Duration::from_secs_f64(latency_ms.abs().min(MAX_OUTPUT_LATENCY_MS) / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_anchor_pairs_the_clocks_and_conversions_invert() {
        // The pair read now agrees with a pair read independently around it, to the gap between
        // those readings.
        let before = (Instant::now(), SystemTime::now());
        let clock = WallClock::now();
        let after = (SystemTime::now(), Instant::now());
        let at = clock.anchor.0;
        assert!(before.0 <= at && at <= after.1, "the anchor's moment lies between the readings");
        let wall = clock.wall_at(at, 0.0);
        assert!(before.1 <= wall && wall <= after.0, "its wall time too");

        let t = at + Duration::from_millis(1234);
        for latency_ms in [0.0, 5.5, -3.0, 1e9, -1e9] {
            let wall = clock.wall_at(t, latency_ms);
            assert_eq!(clock.instant_at(wall, latency_ms), Some(t), "round trip at {latency_ms} ms");
        }
        assert_eq!(
            clock.wall_at(t, 10.0),
            clock.wall_at(t, 0.0) + Duration::from_millis(10),
            "latency makes the wall time later"
        );
        let past = clock.wall_at(at, 0.0) - Duration::from_secs(3);
        assert_eq!(clock.instant_at(past, 0.0), at.checked_sub(Duration::from_secs(3)));
        assert_eq!(clock.instant_at(SystemTime::UNIX_EPOCH, 0.0).map(|i| i <= at), Some(true));
    }

    #[test]
    fn latencies_the_settings_refuse_move_nothing_or_at_most_the_range() {
        let clock = WallClock::now();
        let t = clock.anchor.0 + Duration::from_millis(500);
        let base = clock.wall_at(t, 0.0);
        assert_eq!(clock.wall_at(t, f64::NAN), base, "NaN moves nothing");
        assert_eq!(clock.wall_at(t, -f64::NAN), base, "nor does a negative NaN");
        let max = Duration::from_secs(10);
        assert_eq!(clock.wall_at(t, f64::INFINITY), base + max);
        assert_eq!(clock.wall_at(t, f64::NEG_INFINITY), base - max);
        assert_eq!(clock.wall_at(t, 1e300), base + max);
        assert_eq!(clock.wall_at(t, -1e300), base - max);
        assert_eq!(clock.instant_at(base, f64::NAN), Some(t));
        assert_eq!(clock.instant_at(base + max, f64::INFINITY), Some(t));
    }

    #[test]
    fn a_preempted_reading_gives_way_to_a_tight_one() {
        let t = Instant::now();
        let w = SystemTime::now();
        let ms = Duration::from_millis;
        // Preempted 3 ms between the first monotonic and the wall reading: its midpoint is 1.5 ms
        // off. The next reading is tight and is taken; the one after it is never read.
        let mut read = 0;
        let readings = [(t, w + ms(3), t + ms(3)), (t + ms(4), w + ms(4), t + ms(4)), (t, w, t + ms(100))];
        let clock = WallClock::tightest(readings.into_iter().inspect(|_| read += 1));
        assert_eq!(clock.anchor, (t + ms(4), w + ms(4)));
        assert_eq!(read, 2, "stops at the first tight reading");
        // None tight: the smallest gap wins.
        let loose = [(t, w, t + ms(3)), (t + ms(5), w + ms(5) + ms(1) / 2, t + ms(6)), (t, w, t + ms(2))];
        let clock = WallClock::tightest(loose.into_iter());
        assert_eq!(clock.anchor, (t + ms(5) + ms(1) / 2, w + ms(5) + ms(1) / 2));
    }

    #[test]
    fn refresh_waits_for_its_period() {
        let mut clock = WallClock::now();
        let first = clock.anchor;
        clock.refresh_if_due(first.0 + REANCHOR_EVERY - Duration::from_millis(1));
        assert_eq!(clock.anchor, first, "not yet");
        clock.refresh_if_due(first.0 + REANCHOR_EVERY);
        assert!(clock.anchor.0 >= first.0, "re-read");
        assert_ne!(clock.anchor, first, "re-read");
    }
}
