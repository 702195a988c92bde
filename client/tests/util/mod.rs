//! Drives the real `osc-timecode` binary (as ripgrep's `tests/util.rs` drives `rg`): a clean
//! environment, a scratch directory per test, standard input fed from a thread, and assertions
//! on the exit status and on what was printed.

// Shared by several test binaries; each uses only part of it.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The reference vectors' folder and CSV reader, owned by core's tests.
#[path = "../../../core/tests/data/mod.rs"]
mod reference_data;

/// The binary under test: the one cargo built, unless `OSC_TIMECODE_TEST_BIN` names another
/// (an older build, to show that a regression test fails there).
pub static BIN: std::sync::LazyLock<PathBuf> = std::sync::LazyLock::new(|| {
    std::env::var_os("OSC_TIMECODE_TEST_BIN")
        .filter(|b| !b.is_empty())
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_osc-timecode")), PathBuf::from)
});

/// Environment variables the command reads; cleared so the developer's shell never leaks in.
const ENV_VARS: [&str; 6] = [
    "OSC_TIMECODE_CONFIG",
    "OSC_TIMECODE_RATE",
    "OSC_TIMECODE_SAMPLE_RATE",
    "OSC_TIMECODE_MASTER",
    "OSC_TIMECODE_TOKEN",
    "OSC_TIMECODE_LISTEN",
];

/// One invocation of the binary, in its own scratch directory.
pub struct Cmd {
    cmd: Command,
    dir: PathBuf,
    stdin: Vec<u8>,
    description: String,
}

/// A fresh scratch directory named after the test, and a command whose config file is
/// `<dir>/config.toml` (absent unless [`Cmd::write_config`] writes it): the developer's real
/// config never applies.
pub fn osc_timecode(test_name: &str) -> Cmd {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("osc-timecode-cli").join(test_name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("could not create {}: {e}", dir.display()));
    let mut cmd = Command::new(&*BIN);
    for var in ENV_VARS {
        cmd.env_remove(var);
    }
    cmd.env("OSC_TIMECODE_CONFIG", dir.join("config.toml"))
        // Loud if anything panics: the assertions below look for it.
        .env("RUST_BACKTRACE", "1")
        .current_dir(&dir);
    Cmd { cmd, dir, stdin: Vec::new(), description: "osc-timecode".to_owned() }
}

/// What a finished run printed.
pub struct Run {
    pub output: Output,
    pub stdout: String,
    pub stderr: String,
    description: String,
}

impl Cmd {
    /// Appends arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for arg in args {
            let arg = arg.as_ref();
            self.description.push(' ');
            self.description.push_str(&arg.to_string_lossy());
            self.cmd.arg(arg);
        }
        self
    }

    /// Sets an environment variable for the run.
    pub fn env(&mut self, key: &str, value: impl AsRef<OsStr>) -> &mut Self {
        self.description = format!("{key}={} {}", value.as_ref().to_string_lossy(), self.description);
        self.cmd.env(key, value);
        self
    }

    /// Feeds `input` on standard input (otherwise it is empty).
    pub fn stdin(&mut self, input: impl Into<Vec<u8>>) -> &mut Self {
        self.stdin = input.into();
        self
    }

    /// The scratch directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes the config file the command finds through `OSC_TIMECODE_CONFIG`.
    pub fn write_config(&mut self, text: &str) -> &mut Self {
        self.write_file("config.toml", text);
        self
    }

    /// Writes `name` in the scratch directory and returns its path.
    pub fn write_file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("could not write {}: {e}", path.display()));
        path
    }

    /// Runs to completion whatever the exit status.
    pub fn run(&mut self) -> Run {
        let mut child = self
            .cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {}: {e}", BIN.display()));
        let mut stdin = child.stdin.take().expect("piped stdin");
        let input = std::mem::take(&mut self.stdin);
        // A thread, so a large input cannot deadlock against a full stdout pipe. Write errors are
        // expected when the command exits without reading (a bad flag).
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let output = child.wait_with_output().unwrap_or_else(|e| panic!("could not wait for {}: {e}", BIN.display()));
        writer.join().expect("stdin writer");
        let text = |bytes: &[u8]| String::from_utf8(bytes.to_vec()).expect("output is UTF-8");
        Run {
            stdout: text(&output.stdout),
            stderr: text(&output.stderr),
            output,
            description: self.description.clone(),
        }
    }

    /// Starts the command without waiting for it: standard input empty, standard output and
    /// error piped. For long-running commands (`serve`); the caller owns the child and must kill
    /// it (see `tests/serve.rs`'s guard).
    pub fn spawn(&mut self) -> std::process::Child {
        self.cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {}: {e}", BIN.display()))
    }

    /// What the command line looks like, for messages.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Runs, expects success with nothing on standard error, and returns standard output.
    pub fn stdout(&mut self) -> String {
        let run = self.run();
        run.assert_no_panic();
        assert!(
            run.output.status.success() && run.stderr.is_empty(),
            "{}: expected success, got {}\nstderr: {}",
            run.description,
            run.output.status,
            run.stderr
        );
        run.stdout
    }

    /// Runs, expects exit status 2 (a usage or setup error) with nothing on standard output and
    /// exactly one line `osc-timecode: ...` on standard error; returns that line without the
    /// prefix.
    pub fn fails(&mut self) -> String {
        self.fails_with(2)
    }

    /// As [`Cmd::fails`], with exit status 1: the command ran but the answer is no (a cue refused
    /// or unanswered).
    pub fn not_done(&mut self) -> String {
        self.fails_with(1)
    }

    /// Runs, expects exit status `code` with nothing on standard output and exactly one line
    /// `osc-timecode: ...` on standard error; returns that line without the prefix.
    pub fn fails_with(&mut self, code: i32) -> String {
        let run = self.run();
        run.assert_no_panic();
        assert_eq!(
            run.output.status.code(),
            Some(code),
            "{}: expected exit status {code}\nstdout: {}\nstderr: {}",
            run.description,
            run.stdout,
            run.stderr
        );
        assert!(run.stdout.is_empty(), "{}: nothing on stdout, got {:?}", run.description, run.stdout);
        let lines: Vec<&str> = run.stderr.lines().collect();
        assert!(
            lines.len() == 1 && run.stderr.ends_with('\n'),
            "{}: expected one line on stderr, got {:?}",
            run.description,
            run.stderr
        );
        lines[0]
            .strip_prefix("osc-timecode: ")
            .unwrap_or_else(|| panic!("{}: error line without the prefix: {:?}", run.description, lines[0]))
            .to_owned()
    }
}

impl Run {
    /// No panic message, no backtrace, no Rust-internal exit status.
    pub fn assert_no_panic(&self) {
        for needle in ["panicked", "backtrace", "RUST_BACKTRACE"] {
            assert!(!self.stderr.contains(needle), "{}: {needle:?} on stderr:\n{}", self.description, self.stderr);
        }
        assert_ne!(self.output.status.code(), Some(101), "{}: exit status of a panic", self.description);
    }
}

/// The rows of a reference CSV (`core/tests/data/`, or `$OSC_TIMECODE_REFERENCE_DIR`), checked
/// against the expected header; fields as text, in column order. Missing data fails the test: a
/// conversion test that silently passed without its data would prove nothing.
pub fn reference_rows(file: &str, header: &[&str]) -> Vec<Vec<String>> {
    reference_data::read_csv(file, header).into_iter().map(|row| row.fields).collect()
}

/// Groups rows by a key, keeping first-seen order.
pub fn group_by<K: PartialEq + Clone>(
    rows: &[Vec<String>],
    key: impl Fn(&[String]) -> K,
) -> Vec<(K, Vec<&Vec<String>>)> {
    let mut groups: Vec<(K, Vec<&Vec<String>>)> = Vec::new();
    for row in rows {
        let k = key(row);
        match groups.iter_mut().find(|(g, _)| *g == k) {
            Some((_, members)) => members.push(row),
            None => groups.push((k, vec![row])),
        }
    }
    groups
}

/// A child process killed (and reaped) when dropped, so a failing assertion never leaves a
/// long-running command (`serve`, `listen`) behind.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A UDP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A long-running command's output, read as it comes: standard output line by line through a
/// channel, standard error collected (and each line also sent to a channel), so a test can wait
/// for a line without blocking on a pipe the command fills.
pub struct Streams {
    /// Standard output, line by line.
    pub stdout: std::sync::mpsc::Receiver<String>,
    /// Standard error, line by line.
    pub stderr_lines: std::sync::mpsc::Receiver<String>,
    /// Standard error so far.
    pub stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Streams {
    /// Takes `child`'s piped standard output and error and reads them on threads of their own.
    pub fn take(child: &mut std::process::Child) -> Self {
        use std::io::BufRead as _;
        let out = child.stdout.take().expect("piped stdout");
        let err = child.stderr.take().expect("piped stderr");
        let (out_tx, stdout) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if out_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (err_tx, stderr_lines) = std::sync::mpsc::channel();
        {
            let stderr = std::sync::Arc::clone(&stderr);
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(err).lines() {
                    let Ok(line) = line else { break };
                    stderr.lock().unwrap().push_str(&format!("{line}\n"));
                    let _ = err_tx.send(line);
                }
            });
        }
        Self { stdout, stderr_lines, stderr }
    }

    /// The next line on standard error, within `timeout`.
    pub fn stderr_line(&self, timeout: std::time::Duration, what: &str) -> String {
        self.stderr_lines.recv_timeout(timeout).unwrap_or_else(|_| {
            panic!("no line on stderr for {what} within {timeout:?}; stderr so far:\n{}", self.stderr())
        })
    }

    /// Standard error so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

// Linux only, these two: they read `/proc`. They compile everywhere (plain file reads), so the
// tests that call them compile on macOS and Windows too, where they carry
// `#[cfg_attr(not(target_os = "linux"), ignore = "reads /proc (Linux only)")]`.

/// A `/proc/PID/status` field in KiB (`VmRSS`, `VmHWM`). Panics where it cannot be read.
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("could not read {path}: {e}"));
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {path}:\n{text}"));
    let mut words = line[field.len() + 1..].split_whitespace();
    let kib = words.next().and_then(|w| w.parse().ok()).unwrap_or_else(|| panic!("{path}: {line}"));
    assert_eq!(words.next(), Some("kB"), "{path}: {line}");
    kib
}

/// Datagrams the kernel dropped for the IPv4 UDP socket bound to `127.0.0.1:port` (the last
/// column of its `/proc/net/udp` line: a full receive buffer), or `None` if no socket is bound
/// there.
pub fn udp_drops(port: u16) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/udp").expect("/proc/net/udp");
    // `sl local_address rem_address st ... drops`, addresses as hex, 127.0.0.1 is 0100007F.
    let local = format!("0100007F:{port:04X}");
    text.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.get(1) == Some(&local.as_str())).then(|| fields.last().and_then(|d| d.parse().ok())).flatten()
    })
}
