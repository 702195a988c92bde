//! A background thread that runs until asked to stop: the network and cue threads.
//!
//! `[main-thread]` owns the handle: spawned in `activate()`, stopped and joined in `deactivate()`
//! or when the handle is dropped, so no thread outlives its activation.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use nice_plug::prelude::*;

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
    /// Spawns `name` running `body(stop)`; `body` returns once `stop` is set.
    pub fn spawn(name: &'static str, body: impl FnOnce(Arc<AtomicBool>) + Send + 'static) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new().name(name.into()).spawn(move || body(flag))?;
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

impl Drop for StoppableThread {
    fn drop(&mut self) {
        self.join();
    }
}
