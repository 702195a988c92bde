//! A background thread that runs until asked to stop: the one handle of the network and cue
//! threads ([`crate::network::spawn`], [`crate::cues::receiver::spawn`]).
//!
//! `[main-thread]` owns the handle: spawned in `activate()`, stopped and joined in `deactivate()`
//! or when the handle is dropped, so no thread outlives its activation.
//!
//! Priorities: the network thread asks for the lowest real-time priority ([`Priority::Timing`]:
//! `SCHED_FIFO` 1 on Linux, below every audio thread of a host), where the OS allows it (root, or
//! the `rtprio` limit audio users have), else keeps the priority it is spawned with (the host's
//! main thread's, normally) and the log says so once. The cue thread runs as a [`Priority::Background`] thread, the lowest
//! normal priority (`SCHED_IDLE` on Linux, the lowest `SCHED_OTHER` priority on macOS,
//! `THREAD_PRIORITY_LOWEST` on Windows), because a flood of packets at the cue port kept it busy
//! on every core and starved the timecode sender (issue 14: inter-arrival error p99 of 16 ms on
//! two cores). It still gets the CPU whenever a core is free, so cues are as fast as before on
//! a machine that is not saturated. Where the OS refuses, the thread runs at its inherited
//! priority and the log says so once per process.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use nice_plug::prelude::*;

/// How a thread is scheduled against the host's and the other plugin threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// The priority of the thread that spawned it (the network thread).
    Inherited,
    /// The lowest normal priority (the cue thread): it must never starve the network thread.
    Background,
    /// Real-time, at the lowest real-time priority (the network thread), where the OS allows it
    /// (Linux: root, or an `rtprio` limit, as audio users have for their DAW): below every audio
    /// thread of the host, above every normal thread, so a busy machine does not delay a frame.
    /// It sleeps between frames, so it never holds a core.
    Timing,
}

/// Set once a failure to lower a thread's priority has been logged. `[thread-safe]`.
static PRIORITY_FAILURE_LOGGED: AtomicBool = AtomicBool::new(false);
/// Set once a refusal of real-time priority has been logged. `[thread-safe]`.
static RAISE_FAILURE_LOGGED: AtomicBool = AtomicBool::new(false);

/// Handle to a running background thread.
#[derive(Debug)]
pub struct StoppableThread {
    /// The thread's name, for the panic report.
    name: &'static str,
    /// Set to ask the thread to finish; the thread polls it.
    stop: Arc<AtomicBool>,
    /// Joined on stop.
    handle: Option<JoinHandle<()>>,
}

impl StoppableThread {
    /// Spawns `name` running `body(stop)` at the spawning thread's priority; `body` returns
    /// once `stop` is set.
    pub fn spawn(name: &'static str, body: impl FnOnce(Arc<AtomicBool>) + Send + 'static) -> std::io::Result<Self> {
        Self::spawn_at(name, Priority::Inherited, body)
    }

    /// Like [`StoppableThread::spawn`], the thread first setting its own `priority` (falling
    /// back to the inherited one, logged once per process, where the OS refuses).
    pub fn spawn_at(
        name: &'static str,
        priority: Priority,
        body: impl FnOnce(Arc<AtomicBool>) + Send + 'static,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new().name(name.into()).spawn(move || {
            if priority == Priority::Background
                && let Err(e) = lower_current_thread()
                && !PRIORITY_FAILURE_LOGGED.swap(true, Ordering::Relaxed)
            {
                nice_warn!("could not lower the priority of the thread {name} ({e:?}): it runs at the host's priority");
            }
            if priority == Priority::Timing
                && let Err(e) = raise_current_thread()
                && !RAISE_FAILURE_LOGGED.swap(true, Ordering::Relaxed)
            {
                nice_log!(
                    "the thread {name} runs at the host's priority: real-time priority was refused ({e:?}); an \
                     rtprio limit (the audio group's) lets it keep frame timing on a busy machine"
                );
            }
            body(flag)
        })?;
        Ok(Self { name, stop, handle: Some(handle) })
    }

    /// Asks the thread to finish without waiting for it, so that several threads wind down
    /// together; [`StoppableThread::stop`] (or drop) then joins it.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// Stops the thread and waits for it (as long as its loop takes to notice).
    pub fn stop(mut self) {
        self.join();
    }

    fn join(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(handle) = self.handle.take()
            && handle.join().is_err()
        {
            nice_error!("the OSC Timecode thread {} panicked", self.name);
        }
    }
}

/// `[main-thread]` Stops `threads` together: asks each to finish, then joins each. Every thread
/// notices the request at its next wake-up (the cue thread's is up to 20 ms away), so the wait is
/// the slowest one's, not their sum.
pub fn stop_all<const N: usize>(threads: [Option<StoppableThread>; N]) {
    for thread in threads.iter().flatten() {
        thread.request_stop();
    }
    for thread in threads.into_iter().flatten() {
        thread.stop();
    }
}

/// Gives the calling thread the lowest normal priority ([`Priority::Background`]).
fn lower_current_thread() -> Result<(), thread_priority::Error> {
    use thread_priority::ThreadPriority;
    // Linux: SCHED_IDLE, below every SCHED_OTHER thread whatever its nice value: a waking
    // network thread preempts it at once (nice 19 alone left p99 inter-arrival errors of up to
    // 2.7 ms under a flood in the bench). Also for a thread spawned from a real-time one (which
    // inherits SCHED_FIFO, where "minimum" would still be above every normal thread).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use thread_priority::{NormalThreadSchedulePolicy, ThreadSchedulePolicy, thread_native_id};
        let policy = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
        thread_priority::set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Min, policy)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    thread_priority::set_current_thread_priority(ThreadPriority::Min)
}

/// Gives the calling thread the lowest real-time priority ([`Priority::Timing`]): `SCHED_FIFO` 1
/// on Linux; elsewhere nothing (the thread keeps its priority).
fn raise_current_thread() -> Result<(), thread_priority::Error> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use thread_priority::{
            RealtimeThreadSchedulePolicy, ThreadPriority, ThreadPriorityValue, ThreadSchedulePolicy, thread_native_id,
        };
        let lowest = ThreadPriorityValue::try_from(1u8).map_err(|_| thread_priority::Error::Priority("1"))?;
        let policy = ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo);
        thread_priority::set_thread_priority_and_policy(
            thread_native_id(),
            ThreadPriority::Crossplatform(lowest),
            policy,
        )
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    Ok(())
}

impl Drop for StoppableThread {
    fn drop(&mut self) {
        self.join();
    }
}

/// Linux only: they read the scheduling policy from `/proc`.
#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The calling thread's scheduling policy (0 SCHED_OTHER, 1 SCHED_FIFO, 5 SCHED_IDLE), field
    /// 41 of `/proc/thread-self/stat` (after the name in parentheses, which may hold spaces); for
    /// SCHED_FIFO, also its real-time priority (field 40) must be the lowest, 1.
    fn policy_of_this_thread() -> i64 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("Linux has /proc/thread-self");
        let (_, after_name) = stat.rsplit_once(')').expect("a stat line has the name in parentheses");
        // Fields from the 3rd (state) on: rt_priority is the 40th field overall, policy the 41st.
        let field = |n: usize| after_name.split_whitespace().nth(n).and_then(|v| v.parse::<i64>().ok());
        let policy = field(38).expect("a policy");
        if policy == 1 {
            assert_eq!(field(37), Some(1), "the lowest real-time priority");
        }
        policy
    }

    #[test]
    fn background_runs_as_sched_idle_timing_as_sched_fifo_1_and_inherited_as_its_parent() {
        let parent = policy_of_this_thread();
        let seen = |priority| {
            let (tx, rx) = std::sync::mpsc::channel();
            let thread = StoppableThread::spawn_at("osc-timecode-test", priority, move |stop| {
                tx.send(policy_of_this_thread()).unwrap();
                while !stop.load(Ordering::Acquire) {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            })
            .unwrap();
            let nice = rx.recv().unwrap();
            thread.stop();
            nice
        };
        assert_eq!(seen(Priority::Background), 5, "SCHED_IDLE");
        // Real-time where allowed (root here, as in CI): SCHED_FIFO at priority 1.
        let root = std::fs::read_to_string("/proc/self/status")
            .unwrap_or_default()
            .lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
        let timing = seen(Priority::Timing);
        if root {
            assert_eq!(timing, 1, "SCHED_FIFO");
        } else {
            assert!(timing == 1 || timing == parent, "SCHED_FIFO, or the parent's when refused");
        }
        assert_eq!(seen(Priority::Inherited), parent);
    }
}
