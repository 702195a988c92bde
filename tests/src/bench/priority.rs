//! Real-time priority for the harness's audio threads, as a DAW gives its audio callback:
//! `SCHED_FIFO` at [`RT_PRIORITY`], set with `chrt` (util-linux) on the thread's kernel id. Only
//! the host's side is raised (the harness's audio thread and the naive sender's thread); the
//! plugin's network and cue threads, `serve`, `listen` and the Python master keep their normal
//! priority, as they would have in a real rig.
//!
//! The harness creates a new audio thread for every run, so the process probe (called on that
//! thread before every `process()`) hands the thread's id to a helper thread once, which runs
//! `chrt` while the audio thread goes on: the first blocks of a run (a few milliseconds) run at
//! normal priority.

use std::cell::Cell;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Mutex, OnceLock};

/// The `SCHED_FIFO` priority given to audio threads (1–99; JACK's default for clients is 70–80,
/// PipeWire's data loop 88: 50 is below both, above every normal thread).
pub const RT_PRIORITY: u32 = 50;

/// Raise audio threads (set once by [`enable`]).
static ENABLED: AtomicBool = AtomicBool::new(false);
/// Threads raised.
static RAISED: AtomicU64 = AtomicU64::new(0);
/// Threads that could not be raised.
static FAILED: AtomicU64 = AtomicU64::new(0);
/// Threads that ended before the helper got to them (short warm-up runs).
static ENDED: AtomicU64 = AtomicU64::new(0);
/// Why the last failure happened.
static LAST_ERROR: Mutex<Option<String>> = Mutex::new(None);
/// The helper thread's queue of thread ids to raise.
static HELPER: OnceLock<Mutex<Sender<u32>>> = OnceLock::new();

thread_local! {
    /// This thread was handed to the helper already.
    static HANDED: Cell<bool> = const { Cell::new(false) };
}

/// Raises every audio thread from now on (starts the helper thread).
pub fn enable() {
    HELPER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<u32>();
        let spawned = std::thread::Builder::new().name("bench-rt-helper".into()).spawn(move || {
            for tid in rx {
                record(raise(tid));
            }
        });
        if let Err(e) = spawned {
            record(Err(format!("could not spawn the helper thread: {e}")));
        }
        Mutex::new(tx)
    });
    ENABLED.store(true, Ordering::SeqCst);
}

/// Called on an audio thread before each `process()`: hands the thread to the helper once.
pub fn on_audio_thread() {
    if !ENABLED.load(Ordering::Relaxed) || HANDED.with(|h| h.replace(true)) {
        return;
    }
    match (current_tid(), HELPER.get()) {
        (Some(tid), Some(helper)) => {
            if let Ok(tx) = helper.lock() {
                let _ = tx.send(tid);
            }
        }
        (None, _) => record(Err("could not read /proc/thread-self".into())),
        (_, None) => {}
    }
}

/// Raises the calling thread now (for threads of the bench's own, before their loop starts).
pub fn raise_current_thread() {
    if !ENABLED.load(Ordering::Relaxed) || HANDED.with(|h| h.replace(true)) {
        return;
    }
    record(current_tid().ok_or_else(|| "could not read /proc/thread-self".to_owned()).and_then(raise));
}

/// One line for the report: what priority the audio threads ran at.
pub fn summary() -> String {
    let (raised, failed) = (RAISED.load(Ordering::SeqCst), FAILED.load(Ordering::SeqCst));
    let why = LAST_ERROR.lock().ok().and_then(|e| e.clone()).unwrap_or_default();
    match (raised, failed) {
        (0, 0) => "normal priority (not raised)".to_owned(),
        (_, 0) => format!(
            "`SCHED_FIFO` {RT_PRIORITY} (`chrt`) for the harness's audio threads ({raised} threads; {} short warm-up \
             runs ended first)",
            ENDED.load(Ordering::SeqCst)
        ),
        (0, _) => format!("normal priority: `chrt` failed ({why})"),
        (_, _) => {
            format!("`SCHED_FIFO` {RT_PRIORITY} for {raised} audio threads; {failed} could not be raised ({why})")
        }
    }
}

fn record(result: Result<(), String>) {
    match result {
        Ok(()) => {
            RAISED.fetch_add(1, Ordering::SeqCst);
        }
        Err(why) if why.contains("No such process") => {
            ENDED.fetch_add(1, Ordering::SeqCst);
        }
        Err(why) => {
            FAILED.fetch_add(1, Ordering::SeqCst);
            if let Ok(mut e) = LAST_ERROR.lock() {
                *e = Some(why);
            }
        }
    }
}

/// `chrt -f -p RT_PRIORITY TID`.
fn raise(tid: u32) -> Result<(), String> {
    let out = Command::new("chrt")
        .args(["-f", "-p", &RT_PRIORITY.to_string(), &tid.to_string()])
        .output()
        .map_err(|e| format!("could not run chrt: {e}"))?;
    if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).trim().to_owned()) }
}

/// The calling thread's kernel id, from `/proc/thread-self` (a link to `PID/task/TID`).
fn current_tid() -> Option<u32> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    tid_of(&link.to_string_lossy())
}

/// The TID of a `/proc/thread-self` link target.
fn tid_of(link: &str) -> Option<u32> {
    link.rsplit('/').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_thread_id() {
        assert_eq!(tid_of("2636/task/2640"), Some(2640));
        assert_eq!(tid_of("/proc/12/task/13"), Some(13));
        assert_eq!(tid_of("task/x"), None);
        assert!(current_tid().is_some_and(|t| t > 0));
    }
}
