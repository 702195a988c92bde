//! What this process holds, read from Linux's `/proc/self`: threads, open file descriptors
//! (sockets among them) and resident memory. The leak tests compare a [`ProcessCounts`] taken
//! before many activations or instances with one taken after.
//!
//! The counts cover the whole process, so they only mean something where nothing else runs at
//! the same time: the leak tests run alone in a child process ([`crate::child`]).
//!
//! Linux only. The module compiles everywhere (plain file reads), so the tests that use it
//! compile on macOS and Windows too; there they carry
//! `#[cfg_attr(not(target_os = "linux"), ignore = "reads /proc (Linux only)")]` and show as
//! ignored, and a reader called there panics saying what it could not read.

use std::path::Path;
use std::time::{Duration, Instant};

/// A snapshot of what the process holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessCounts {
    /// Threads (entries of `/proc/self/task`), by name (`comm`, at most 15 bytes:
    /// `osc-timecode-ne` is the plugin's network thread; a thread carries its creator's name until
    /// it has started and named itself), sorted.
    pub threads: Vec<String>,
    /// Open file descriptors (entries of `/proc/self/fd`), sockets included.
    pub fds: usize,
    /// File descriptors that are sockets (links to `socket:[INODE]`).
    pub sockets: usize,
    /// Resident set size in KiB (`VmRSS` in `/proc/self/status`).
    pub rss_kib: u64,
}

impl ProcessCounts {
    /// Reads the counts now. Panics where `/proc/self` cannot be read (not Linux).
    pub fn now() -> Self {
        let mut threads = Vec::new();
        for entry in read_dir("/proc/self/task") {
            let name = std::fs::read_to_string(entry.join("comm")).unwrap_or_default();
            threads.push(name.trim_end().to_owned());
        }
        threads.sort();
        let (mut fds, mut sockets) = (0, 0);
        for entry in read_dir("/proc/self/fd") {
            // The descriptor read_dir itself holds is gone by the time we read its link.
            let Ok(target) = std::fs::read_link(&entry) else { continue };
            fds += 1;
            if target.to_string_lossy().starts_with("socket:[") {
                sockets += 1;
            }
        }
        Self { threads, fds, sockets, rss_kib: rss_kib() }
    }

    /// The counts once `done` holds for them, or the last ones read after `patience`. A joined
    /// thread leaves `/proc/self/task` a moment after `join()` returns (the kernel wakes the
    /// joiner before it removes the task), so a count right after a join may still show it.
    pub fn settle(patience: Duration, done: impl Fn(&Self) -> bool) -> Self {
        let deadline = Instant::now() + patience;
        loop {
            let counts = Self::now();
            if done(&counts) || Instant::now() >= deadline {
                return counts;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// How many threads are named `name` (as the kernel truncates it: 15 bytes).
    pub fn threads_named(&self, name: &str) -> usize {
        let name = &name[..name.len().min(15)];
        self.threads.iter().filter(|t| *t == name).count()
    }

    /// One line for test output: `threads 5, fds 9 (sockets 2), rss 12345 KiB`.
    pub fn summary(&self) -> String {
        format!("threads {}, fds {} (sockets {}), rss {} KiB", self.threads.len(), self.fds, self.sockets, self.rss_kib)
    }
}

fn read_dir(dir: &str) -> Vec<std::path::PathBuf> {
    let entries = std::fs::read_dir(Path::new(dir)).unwrap_or_else(|e| panic!("could not read {dir}: {e}"));
    entries.filter_map(|e| e.ok().map(|e| e.path())).collect()
}

/// `VmRSS` of this process in KiB.
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_else(|e| panic!("could not read /proc/self/status: {e}"));
    parse_vm_rss(&status).unwrap_or_else(|| panic!("no VmRSS line in /proc/self/status:\n{status}"))
}

/// `VmHWM` of this process in KiB: the peak resident set size so far.
pub fn hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_else(|e| panic!("could not read /proc/self/status: {e}"));
    parse_vm_kib(&status, "VmHWM").unwrap_or_else(|| panic!("no VmHWM line in /proc/self/status:\n{status}"))
}

/// Resets this process's `VmHWM` to its resident set size now (`5` written to
/// `/proc/self/clear_refs`, Linux 4.0 and later), so a later [`hwm_kib`] is the peak since then.
pub fn reset_hwm() {
    std::fs::write("/proc/self/clear_refs", "5").unwrap_or_else(|e| panic!("could not reset VmHWM: {e}"));
}

/// The `VmRSS:    1234 kB` line of a `/proc/PID/status` text, in KiB.
fn parse_vm_rss(status: &str) -> Option<u64> {
    parse_vm_kib(status, "VmRSS")
}

/// The `FIELD:    1234 kB` line of a `/proc/PID/status` text, in KiB.
fn parse_vm_kib(status: &str, field: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.strip_prefix(field).is_some_and(|rest| rest.starts_with(':')))?;
    let mut words = line[field.len() + 1..].split_whitespace();
    let kib = words.next()?.parse().ok()?;
    (words.next() == Some("kB")).then_some(kib)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_rss() {
        let status = "Name:\tx\nVmHWM:\t  2000 kB\nVmRSS:\t  1234 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status), Some(1234));
        assert_eq!(parse_vm_rss("VmRSS:\t12 MB\n"), None);
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
        assert_eq!(parse_vm_kib(status, "VmHWM"), Some(2000));
    }

    #[test]
    #[cfg_attr(not(target_os = "linux"), ignore = "reads /proc (Linux only)")]
    fn sees_a_new_thread_and_socket_and_their_end() {
        // Other unit tests of this crate may run in parallel, so only the direction is checked
        // here, on things this test holds while it looks.
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind loopback");
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let (started_tx, started) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("procfs-probe".into())
            .spawn(move || {
                // A new thread carries its creator's name until std renames it, at its start.
                started_tx.send(()).unwrap_or_default();
                rx.recv().unwrap_or_default()
            })
            .expect("spawn");
        started.recv().expect("the probe started");
        let with = ProcessCounts::now();
        assert_eq!(with.threads_named("procfs-probe"), 1, "{:?}", with.threads);
        assert!(with.sockets >= 1 && with.fds >= with.sockets, "{}", with.summary());
        assert!(with.rss_kib > 0);
        tx.send(()).expect("wake the probe");
        thread.join().expect("probe thread");
        drop(socket);
        let gone = ProcessCounts::settle(Duration::from_secs(2), |c| c.threads_named("procfs-probe") == 0);
        assert_eq!(gone.threads_named("procfs-probe"), 0, "{:?}", gone.threads);
    }
}
