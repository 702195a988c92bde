//! Runs one test alone in a child process of the same test binary, for tests that measure the
//! whole process (threads, sockets, memory: [`crate::procfs`]) while the other tests of the
//! binary run in parallel and create threads and sockets of their own.
//!
//! The test calls [`run_alone`] first: in the parent it re-executes the binary with a filter
//! for exactly that test, one test thread and [`CHILD_ENV`] set, waits for it and returns what
//! it printed, or prints that and fails if it failed; in the child it returns [`Side::Child`]
//! and the test goes on to measure. The child takes the bundles the parent built ([`crate::bundle::BUNDLE_DIR_ENV`]),
//! so nothing is built twice.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::bundle::{BUNDLE_DIR_ENV, bundles};

/// Set (to the test's name) in the child's environment.
pub const CHILD_ENV: &str = "OSC_TIMECODE_TEST_CHILD";

/// Where [`run_alone`] returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Side {
    /// In the parent, after the child passed; its standard output and error, for reports.
    Parent {
        /// The child's standard output and standard error, one after the other.
        output: String,
        /// How long the child ran.
        elapsed: Duration,
    },
    /// In the child: run the test's body.
    Child,
}

/// Runs the test `test` (its full name in this binary, e.g. `clap_conformance::leaks`) alone in
/// a child process, unless this is that child. Panics if the child fails or runs longer than
/// `timeout` (then it is killed), with its output.
pub fn run_alone(test: &str, timeout: Duration) -> Side {
    run_alone_with_env(test, timeout, &[])
}

/// Like [`run_alone`], with `env` added to the child's environment: for what a plugin reads once
/// per process, when its library is loaded (`NICE_LOG`, the file nice-plug's logger writes to),
/// or what must not be the developer's (`HOME`, `XDG_CONFIG_HOME`).
pub fn run_alone_with_env(test: &str, timeout: Duration, env: &[(&str, &std::ffi::OsStr)]) -> Side {
    run_alone_wrapped(test, timeout, env, &[])
}

/// Like [`run_alone_with_env`], the child started through `wrapper` (a program and its
/// arguments, the test binary and its arguments appended), e.g. `unshare --net …` for a network
/// namespace of its own; no wrapper when empty.
pub fn run_alone_wrapped(test: &str, timeout: Duration, env: &[(&str, &std::ffi::OsStr)], wrapper: &[&str]) -> Side {
    if std::env::var(CHILD_ENV).is_ok_and(|t| t == test) {
        return Side::Child;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let bundle_dir = bundles().clap.parent().expect("the bundle has a directory").to_path_buf();
    let started = Instant::now();
    let mut command = match wrapper.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    let mut child = command
        // `--include-ignored`: the parent may be a test run explicitly (ignored by default).
        .args([test, "--exact", "--nocapture", "--test-threads=1", "--include-ignored"])
        .env(CHILD_ENV, test)
        .env(BUNDLE_DIR_ENV, &bundle_dir)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("could not re-run {} for {test}: {e}", exe.display()));
    // Drain both pipes on threads of their own, so a chatty child never blocks on a full pipe.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("waiting for the child running {test}: {e}"),
        }
    };
    let elapsed = started.elapsed();
    let output = format!("{}{}", stdout.join().unwrap_or_default(), stderr.join().unwrap_or_default());
    let why = match status {
        // `1 passed`: the filter found the test (0 passed would be a silent pass).
        Some(s) if s.success() && output.contains("test result: ok. 1 passed") => {
            return Side::Parent { output, elapsed };
        }
        Some(s) => format!("failed in its child process ({s})"),
        None => format!("ran longer than {timeout:?} in its child process and was killed"),
    };
    eprintln!("--- child process for {test} ({elapsed:.1?}):\n{output}--- end of child process for {test}");
    panic!("{test} {why}; its output is above");
}
