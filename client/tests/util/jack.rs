//! A private JACK server for the tests that run outputs through JACK (`mtc_jack.rs`,
//! `jack_ltc.rs`): `jackd -n NAME -d dummy` at 48 kHz with 256-frame periods, found by the
//! clients through `JACK_DEFAULT_SERVER`, and stopped when dropped, also when the test fails.
//!
//! Each test names its server once and for all (`osc-timecode-test-NAME`): JACK's registry
//! holds 8 servers, and the entry of one that died is reclaimed only by a server of the same
//! name, so names made afresh each run would fill it. Stopped with SIGTERM, which unregisters
//! it.

#![allow(dead_code, reason = "each test binary uses its part")]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to get JACK's server and tools.
pub const INSTALL: &str = "apt-get install jackd2";

/// The server's sample rate, Hz.
pub const SAMPLE_RATE: u32 = 48_000;

/// The server's period, frames.
pub const PERIOD: u32 = 256;

/// Fails the calling test, with the install hint, unless every tool named is on the PATH.
#[track_caller]
pub fn require_tools(tools: &[&str]) {
    for tool in tools {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(found, "{tool} is not installed: this test needs it ({INSTALL}; .ci/run does this)");
    }
}

/// A running private server, stopped when dropped (SIGTERM, then SIGKILL after 5 s).
pub struct Jack {
    /// Its name: clients find it through `JACK_DEFAULT_SERVER`.
    pub name: String,
    /// The server process.
    server: Option<Child>,
    /// Its standard output and error, for messages.
    log: PathBuf,
}

impl Jack {
    /// Starts the server `osc-timecode-test-{test}` and waits until it answers (one more try if
    /// the first server ends before it does).
    pub fn start(test: &str) -> Self {
        let name = format!("osc-timecode-test-{test}");
        let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.log"));
        let mut jack = Self { name, server: None, log };
        for attempt in 0..2 {
            let out = std::fs::File::create(&jack.log).expect("create jackd's log");
            let err = out.try_clone().expect("jackd's log");
            let server = Command::new("jackd")
                .args(["-n", &jack.name, "-d", "dummy", "-r", &SAMPLE_RATE.to_string(), "-p", &PERIOD.to_string()])
                .stdout(out)
                .stderr(err)
                .spawn()
                .expect("start jackd");
            jack.server = Some(server);
            let ok =
                jack.command("jack_wait").args(["-s", &jack.name, "-w", "-t", "20"]).output().expect("run jack_wait");
            if ok.status.success() {
                return jack;
            }
            let ended = jack.server.as_mut().and_then(|s| s.try_wait().ok().flatten());
            assert!(
                attempt == 0 && ended.is_some(),
                "jackd -n {} did not answer ({:?}): {}{}",
                jack.name,
                ended,
                String::from_utf8_lossy(&ok.stderr),
                std::fs::read_to_string(&jack.log).unwrap_or_default()
            );
            jack.stop();
            std::thread::sleep(Duration::from_millis(500));
        }
        unreachable!("the loop returns or fails")
    }

    /// A command that talks to this server.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("JACK_DEFAULT_SERVER", &self.name)
            .env("JACK_NO_AUDIO_RESERVATION", "1")
            .env("JACK_NO_START_SERVER", "1");
        cmd
    }

    /// The file jackd writes its standard output and error to (its xrun lines among them).
    pub fn log_path(&self) -> &std::path::Path {
        &self.log
    }

    /// Waits until port `port` exists (a client just started registers it).
    pub fn wait_for_port(&self, port: &str) {
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            let out = self.command("jack_lsp").output().expect("run jack_lsp");
            if String::from_utf8_lossy(&out.stdout).lines().any(|l| l.trim() == port) {
                return;
            }
            assert!(Instant::now() < until, "JACK port {port} did not appear");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server.
    fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = Command::new("kill").args(["-TERM", &server.id().to_string()]).status();
            let until = Instant::now() + Duration::from_secs(5);
            while Instant::now() < until {
                if let Ok(Some(_)) = server.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = server.kill();
            let _ = server.wait();
        }
    }
}

impl Drop for Jack {
    fn drop(&mut self) {
        self.stop();
    }
}
