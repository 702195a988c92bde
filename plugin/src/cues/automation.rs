//! Parameter cues on the cue thread: setting a parameter as a host gesture through the wrapper's
//! [`RemoteParamSetter`], ramps, and the changes the audio thread hands back.
//!
//! Where a parameter change is made:
//! - an immediate cue (no timetag): here, at once, through the setter; the host applies it at
//!   its next parameter flush or block boundary;
//! - a timetagged cue: the audio thread places it like a MIDI cue ([`super::player`]) and, at the
//!   block containing its time, sets it there as a host gesture at its sample
//!   (`ProcessContext::set_parameter_normalized`, vendored nice-plug, `PATCHED`). Where the format
//!   cannot begin a gesture on the audio thread (VST3: `IComponentHandler` belongs to the UI
//!   thread), and for every ramp, the audio thread hands the change back here through a
//!   lock-free ring ([`ParamDue`]) at that block instead, and this thread sets it on its next turn;
//! - a ramp: from the parameter's value when the ramp starts to the cue's value over `ramp_ms`,
//!   one whole gesture every [`RAMP_STEP`] with the value the ramp has reached then, the last one
//!   exactly the cue's value. A new cue for the same parameter takes over from a running ramp
//!   (the latest cue wins); deactivation ends every ramp at its value.
//!
//! Bounded: one ramp per parameter, at most [`RETURN_CAPACITY`] changes waiting here.

use std::sync::Arc;
use std::time::{Duration, Instant};

use nice_plug::prelude::{RemoteParamError, RemoteParamSetter};

use crate::params::{PARAM_IDS, ParamRef, TimecodeParams};
use crate::settings::values::{Normalized, RampMs};

/// How often a ramp moves its parameter: 100 gestures a second at most.
pub const RAMP_STEP: Duration = Duration::from_millis(10);
/// Changes the audio thread can hand back at once (the ring), and that may wait here for the
/// wrapper's queue to take them.
pub const RETURN_CAPACITY: usize = 1024;

/// A parameter change the audio thread hands back to the cue thread at the block containing its
/// time. `Copy`, no heap.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParamDue {
    /// The parameter.
    pub param: ParamRef,
    /// Normalized value.
    pub value: Normalized,
    /// Milliseconds to move there.
    pub ramp_ms: RampMs,
    /// The audio thread already set it (so a ramp running here must stop); `false`: set it here.
    pub done: bool,
}

/// A ramp under way. `[cue-thread]`
#[derive(Debug, Clone, Copy)]
struct Ramp {
    /// The parameter.
    param: ParamRef,
    /// Normalized value when it started.
    from: f32,
    /// Normalized value it ends at.
    to: f32,
    /// When it started.
    start: Instant,
    /// How long it takes.
    length: Duration,
    /// When it last set a value.
    stepped: Instant,
}

impl Ramp {
    /// The value at `now`, and whether the ramp is over.
    fn at(&self, now: Instant) -> (f32, bool) {
        let elapsed = now.saturating_duration_since(self.start);
        if elapsed >= self.length {
            return (self.to, true);
        }
        let share = elapsed.as_secs_f64() / self.length.as_secs_f64();
        ((f64::from(self.from) + (f64::from(self.to) - f64::from(self.from)) * share) as f32, false)
    }
}

/// Parameter changes and ramps on the cue thread. `[cue-thread]`
pub struct Automation {
    /// The wrapper's setter; `None` in a wrapper without one (then nothing can be set).
    setter: Option<Arc<dyn RemoteParamSetter>>,
    /// For where a ramp starts.
    params: Arc<TimecodeParams>,
    /// Changes the audio thread hands back; `None` when there is no audio side (tests, fuzzing).
    returns: Option<rtrb::Consumer<ParamDue>>,
    /// Changes not yet taken by the wrapper's queue (it was full), oldest first, at most
    /// [`RETURN_CAPACITY`].
    waiting: Vec<ParamDue>,
    /// Ramps under way, at most one per parameter.
    ramps: Vec<Ramp>,
}

impl Automation {
    /// Sets parameters through `setter`, takes changes back from `returns`, and reads where a
    /// ramp starts from `params`.
    pub fn new(
        setter: Option<Arc<dyn RemoteParamSetter>>,
        params: Arc<TimecodeParams>,
        returns: Option<rtrb::Consumer<ParamDue>>,
    ) -> Self {
        Self {
            setter,
            params,
            returns,
            waiting: Vec::with_capacity(RETURN_CAPACITY),
            ramps: Vec::with_capacity(PARAM_IDS.len()),
        }
    }

    /// Whether parameters can be set at all (the wrapper gave a setter).
    pub fn can_set(&self) -> bool {
        self.setter.is_some()
    }

    /// An immediate cue: sets `param` to `value` now as one gesture (a running ramp of it stops),
    /// or starts a ramp there. `Err`: nothing was set (the wrapper's queue is full, or there is
    /// no setter: [`RemoteParamError::Unsupported`]).
    pub fn set_now(
        &mut self,
        param: ParamRef,
        value: Normalized,
        ramp_ms: RampMs,
        now: Instant,
    ) -> Result<(), RemoteParamError> {
        self.ramps.retain(|r| r.param != param);
        if ramp_ms.get() > 0 {
            self.start_ramp(param, value, ramp_ms, now);
            return Ok(());
        }
        self.set(param, value.get())
    }

    /// Sets `param` to `value` as soon as the wrapper's queue takes it (on a later turn if it is
    /// full now): the rest of a cue whose first change was set.
    pub fn set_soon(&mut self, param: ParamRef, value: Normalized, ramp_ms: RampMs, now: Instant) {
        if self.set_now(param, value, ramp_ms, now).is_err() && self.waiting.len() < RETURN_CAPACITY {
            self.waiting.push(ParamDue { param, value, ramp_ms, done: false });
        }
    }

    /// One turn: takes what the audio thread handed back, retries what waits, moves the ramps,
    /// and lets the wrapper deliver changes a host's run loop left waiting
    /// ([`RemoteParamSetter::flush_stalled`]).
    pub fn run(&mut self, now: Instant) {
        if let Some(setter) = &self.setter {
            setter.flush_stalled();
        }
        while self.waiting.len() < RETURN_CAPACITY {
            let Some(due) = self.returns.as_mut().and_then(|r| r.pop().ok()) else { break };
            self.waiting.push(due);
        }
        let mut waiting = std::mem::take(&mut self.waiting);
        let mut blocked = false;
        waiting.retain(|due| {
            if due.done {
                // Set at its sample by the audio thread: it ends any ramp of that parameter.
                self.ramps.retain(|r| r.param != due.param);
                return false;
            }
            // In order: once one waits, the ones after it wait too.
            blocked = blocked || self.set_now(due.param, due.value, due.ramp_ms, now).is_err();
            blocked
        });
        self.waiting = waiting;
        self.step_ramps(now, false);
    }

    /// When the next ramp step is due, if a ramp is under way or a change waits.
    pub fn next_wake(&self) -> Option<Instant> {
        let ramp = self.ramps.iter().map(|r| r.stepped + RAMP_STEP).min();
        let waiting = (!self.waiting.is_empty()).then(|| Instant::now() + RAMP_STEP);
        ramp.into_iter().chain(waiting).min()
    }

    /// Ramps under way.
    pub fn ramps(&self) -> usize {
        self.ramps.len()
    }

    /// The plugin is being deactivated: every ramp ends at its value now.
    pub fn finish(&mut self) {
        self.step_ramps(Instant::now(), true);
    }

    fn start_ramp(&mut self, param: ParamRef, value: Normalized, ramp_ms: RampMs, now: Instant) {
        let from = self.params.normalized(param);
        let length = Duration::from_millis(u64::from(ramp_ms.get()));
        self.ramps.push(Ramp { param, from, to: value.get(), start: now, length, stepped: now });
    }

    /// Sets each ramp's value where a step is due (`all`: every ramp, at its end value).
    fn step_ramps(&mut self, now: Instant, all: bool) {
        let mut i = 0;
        while i < self.ramps.len() {
            let ramp = self.ramps[i];
            if !all && now < ramp.stepped + RAMP_STEP {
                i += 1;
                continue;
            }
            let (value, over) = if all { (ramp.to, true) } else { ramp.at(now) };
            let set = self.set(ramp.param, value);
            match set {
                // The last step must land: kept until the queue takes it.
                Err(RemoteParamError::QueueFull) if over && !all => i += 1,
                _ if over => {
                    self.ramps.swap_remove(i);
                }
                _ => {
                    self.ramps[i].stepped = now;
                    i += 1;
                }
            }
        }
    }

    fn set(&self, param: ParamRef, value: f32) -> Result<(), RemoteParamError> {
        let setter = self.setter.as_ref().ok_or(RemoteParamError::Unsupported)?;
        setter.set_parameter_normalized(param.id(), value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;
    use std::sync::Mutex;

    /// A setter that records every gesture and refuses while `full` is set.
    #[derive(Default)]
    struct Recorder {
        set: Mutex<Vec<(String, f32)>>,
        full: std::sync::atomic::AtomicBool,
    }

    impl RemoteParamSetter for Recorder {
        fn set_parameter_normalized(&self, param_id: &str, normalized: f32) -> Result<(), RemoteParamError> {
            if self.full.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(RemoteParamError::QueueFull);
            }
            self.set.lock().unwrap().push((param_id.to_owned(), normalized));
            Ok(())
        }
    }

    fn rig(returns: Option<rtrb::Consumer<ParamDue>>) -> (Automation, Arc<Recorder>) {
        let recorder = Arc::new(Recorder::default());
        let params = Arc::new(TimecodeParams::new(Settings::default()));
        (Automation::new(Some(recorder.clone()), params, returns), recorder)
    }

    fn macro1() -> ParamRef {
        ParamRef::cue_macro(0).unwrap()
    }

    fn unit(v: f32) -> Normalized {
        Normalized::new(v).unwrap()
    }

    #[test]
    fn a_ramp_moves_in_steps_from_where_it_is_and_ends_exactly_on_its_value() {
        let (mut a, rec) = rig(None);
        let t0 = Instant::now();
        a.set_now(macro1(), unit(1.0), RampMs::new(100).unwrap(), t0).unwrap();
        assert!(rec.set.lock().unwrap().is_empty(), "the first step comes one step after the start");
        for ms in (10..=120).step_by(10) {
            a.run(t0 + Duration::from_millis(ms));
        }
        let set = rec.set.lock().unwrap().clone();
        let values: Vec<f32> = set.iter().map(|(_, v)| *v).collect();
        assert!(set.iter().all(|(id, _)| id == "macro1"));
        assert_eq!(values.len(), 10, "{values:?}");
        for (i, v) in values.iter().enumerate() {
            assert!((v - (i as f32 + 1.0) / 10.0).abs() < 1e-6, "step {i}: {v}");
        }
        assert_eq!(*values.last().unwrap(), 1.0, "the last step is the value itself");
        assert_eq!(a.ramps(), 0);
    }

    #[test]
    fn the_latest_cue_takes_over_a_ramp_and_deactivation_ends_ramps_on_their_value() {
        let (mut a, rec) = rig(None);
        let t0 = Instant::now();
        a.set_now(macro1(), unit(1.0), RampMs::new(1000).unwrap(), t0).unwrap();
        a.run(t0 + Duration::from_millis(10));
        a.set_now(macro1(), unit(0.25), RampMs::MIN, t0 + Duration::from_millis(15)).unwrap();
        a.run(t0 + Duration::from_millis(30));
        assert_eq!(a.ramps(), 0, "an immediate cue stops the ramp");
        let last = rec.set.lock().unwrap().last().cloned();
        assert_eq!(last, Some(("macro1".to_owned(), 0.25)));
        let macro2 = ParamRef::cue_macro(1).unwrap();
        a.set_now(macro2, unit(0.5), RampMs::new(60_000).unwrap(), t0).unwrap();
        a.finish();
        assert_eq!(rec.set.lock().unwrap().last().cloned(), Some(("macro2".to_owned(), 0.5)));
        assert_eq!(a.ramps(), 0);
    }

    #[test]
    fn handed_back_changes_are_set_in_order_when_the_queue_takes_them_and_done_ones_stop_ramps() {
        let (mut producer, consumer) = rtrb::RingBuffer::new(RETURN_CAPACITY);
        let (mut a, rec) = rig(Some(consumer));
        let t0 = Instant::now();
        rec.full.store(true, std::sync::atomic::Ordering::Relaxed);
        for v in [0.1, 0.2, 0.3] {
            producer.push(ParamDue { param: macro1(), value: unit(v), ramp_ms: RampMs::MIN, done: false }).unwrap();
        }
        a.run(t0);
        assert!(rec.set.lock().unwrap().is_empty());
        assert!(a.next_wake().is_some(), "waiting changes bring the thread back");
        rec.full.store(false, std::sync::atomic::Ordering::Relaxed);
        a.run(t0 + RAMP_STEP);
        let values: Vec<f32> = rec.set.lock().unwrap().iter().map(|(_, v)| *v).collect();
        assert_eq!(values, [0.1, 0.2, 0.3]);
        a.set_now(macro1(), unit(1.0), RampMs::new(1000).unwrap(), t0).unwrap();
        producer.push(ParamDue { param: macro1(), value: unit(0.7), ramp_ms: RampMs::MIN, done: true }).unwrap();
        a.run(t0 + 2 * RAMP_STEP);
        assert_eq!(a.ramps(), 0, "a change set at its sample ends the ramp");
        assert_eq!(rec.set.lock().unwrap().len(), 3, "and is not set again here");
    }
}
