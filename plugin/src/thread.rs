//! A background thread that runs until asked to stop: the network and cue threads.
//!
//! `[main-thread]` owns the handle: spawned in `activate()`, stopped and joined in `deactivate()`
//! or when the handle is dropped, so no thread outlives its activation.
//!
//! Priorities: the network thread keeps the priority it is spawned with (the host's main
//! thread's, normally). The cue thread runs as a [`Priority::Background`] thread, the lowest
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
}

/// Set once a failure to lower a thread's priority has been logged. `[thread-safe]`.
static PRIORITY_FAILURE_LOGGED: AtomicBool = AtomicBool::new(false);

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

impl Drop for StoppableThread {
    fn drop(&mut self) {
        self.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The calling thread's scheduling policy (0 SCHED_OTHER, 1 SCHED_FIFO, 5 SCHED_IDLE), field
    /// 41 of `/proc/thread-self/stat` (after the name in parentheses, which may hold spaces).
    #[cfg(target_os = "linux")]
    fn policy_of_this_thread() -> i64 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("Linux has /proc/thread-self");
        let (_, after_name) = stat.rsplit_once(')').expect("a stat line has the name in parentheses");
        // Fields from the 3rd (state) on: policy is the 41st field overall, the 39th here.
        after_name.split_whitespace().nth(38).and_then(|n| n.parse().ok()).expect("a policy")
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_background_thread_runs_as_sched_idle_and_an_inherited_one_as_its_parent() {
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
        assert_eq!(seen(Priority::Inherited), parent);
    }
}
