//! Audio devices and MIDI ports (issue 17): `osc-timecode outputs` lists them (and says "none",
//! with the reason, on a machine without them), `--ltc DEVICE` refuses what it cannot play with
//! one line and exit status 2, from a flag or from `[client.outputs]` alike.
//!
//! And LTC played on a real cpal stream, without hardware: ALSA's `jack` PCM plugin (Debian
//! `libasound2-plugins`) defined in the test's own `~/.asoundrc` is an ALSA device that cpal
//! lists and opens, paced by a JACK server on its dummy backend (`jackd -d dummy`); `jack_rec`
//! records what it plays, Python's `wave` reads the recording and libltc decodes it
//! (`core/tests/interop/libltc.rs`): decoders nobody here wrote.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use osc_timecode_core::{FrameRate, Timecode};

mod util;

#[path = "../../core/tests/interop/libltc.rs"]
#[allow(dead_code, reason = "the reader's level and byte fields are for other tests")]
mod libltc;

use util::{KillOnDrop, free_port, osc_timecode};

/// Whether this machine has an ALSA sequencer (MIDI).
fn has_sequencer() -> bool {
    Path::new("/dev/snd/seq").exists()
}

/// `osc-timecode outputs`: both sections, each listing flags or saying none and why; exit 0
/// with nothing on standard error from us (ALSA's own complaints about a missing card are not
/// ours to silence), never a panic.
#[test]
fn outputs_lists_devices_and_ports_or_says_none() {
    let run = osc_timecode("outputs_text").args(["outputs"]).run();
    run.assert_no_panic();
    assert_eq!(run.output.status.code(), Some(0), "stderr: {}", run.stderr);
    assert!(!run.stderr.lines().any(|l| l.starts_with("osc-timecode:")), "{}", run.stderr);
    let text = &run.stdout;
    let (audio, midi) = text.split_once("MIDI outputs, for MTC").expect("a MIDI section");
    assert!(audio.starts_with("Audio outputs, for LTC"), "{text}");
    assert!(audio.contains("--ltc ") || audio.contains("  none: "), "{text}");
    if has_sequencer() {
        assert!(midi.contains("--mtc ") || midi.contains("none: no MIDI output ports"), "{text}");
    } else {
        assert!(midi.contains("  none: no MIDI: /dev/snd/seq is missing"), "{text}");
    }
    if cfg!(target_os = "linux") && !Path::new("/dev/snd").exists() {
        // ALSA's default device exists by name but cannot be opened without a card.
        assert!(audio.contains("--ltc default") && audio.contains("cannot be opened"), "{text}");
    }
}

/// `outputs --json` is one JSON object: each audio host with its devices (the flag naming each,
/// its channels and rate or why it cannot be opened), the MIDI ports numbered from 1 or why
/// there are none. Every listed flag is one `--ltc` accepts.
#[test]
fn outputs_json_parses() {
    let run = osc_timecode("outputs_json").args(["outputs", "--json"]).run();
    run.assert_no_panic();
    assert_eq!(run.output.status.code(), Some(0), "stderr: {}", run.stderr);
    assert_eq!(run.stdout.lines().count(), 1, "one line: {}", run.stdout);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    let hosts = json["audio"]["hosts"].as_array().expect("audio.hosts");
    assert!(!hosts.is_empty(), "{json}");
    for host in hosts {
        assert!(host["host"].is_string(), "{host}");
        for device in host["devices"].as_array().expect("devices") {
            let flag = device["flag"].as_str().expect("flag");
            assert!(flag.starts_with("--ltc "), "{device}");
            assert!(device["id"].is_string() && device["name"].is_string() && device["default"].is_boolean());
            assert_eq!(device["channels"].is_u64(), device["error"].is_null(), "settings or why not: {device}");
        }
    }
    let midi = &json["midi"];
    assert!(midi["ports"].is_array(), "{json}");
    if !has_sequencer() {
        assert!(midi["error"].as_str().expect("why no MIDI").contains("/dev/snd/seq is missing"), "{json}");
    }
    for (i, port) in midi["ports"].as_array().unwrap().iter().enumerate() {
        assert_eq!(port["number"], i + 1, "{port}");
    }
}

/// A device nobody has: one line naming it (pointing at `osc-timecode outputs`), exit 2, no
/// panic; the same from `[client.outputs]` in a `--config` file.
#[test]
fn an_unknown_device_is_one_line_and_exit_2() {
    let port = free_port().to_string();
    let bind = format!("127.0.0.1:{port}");
    let line = osc_timecode("ltc_nosuchdevice")
        .args(["listen", "--bind", &bind, "--ltc", "nosuchdevice", "--duration", "1"])
        .fails();
    assert!(line.contains("\"nosuchdevice\"") && line.contains("osc-timecode outputs"), "{line}");

    let mut cmd = osc_timecode("ltc_nosuchdevice_config");
    let config = cmd.write_file("stage.toml", "[client.outputs]\nltc = \"nosuchdevice\"\nltc_channel = 2\n");
    let from_file = cmd
        .args([std::ffi::OsStr::new("--config"), config.as_os_str()])
        .args(["listen", "--bind", &bind, "--duration", "1"])
        .fails();
    assert_eq!(from_file, line, "the file refuses as the flag does");
}

/// `--ltc-channel` is 1-64: 65 is refused by the parser, and by the file with the same words.
#[test]
fn ltc_channel_65_is_refused_by_the_flag_and_the_file() {
    let line = osc_timecode("ltc_channel_65").args(["listen", "--ltc", "default", "--ltc-channel", "65"]).fails();
    assert!(line.contains("--ltc-channel") && line.contains("the LTC channel is 1-64, not 65"), "{line}");
    let mut cmd = osc_timecode("ltc_channel_65_config");
    let config = cmd.write_file("stage.toml", "[client.outputs]\nltc = \"default\"\nltc_channel = 65\n");
    let from_file =
        cmd.args([std::ffi::OsStr::new("--config"), config.as_os_str()]).args(["listen", "--duration", "1"]).fails();
    assert!(from_file.contains("the LTC channel is 1-64, not 65"), "{from_file}");
    assert!(from_file.contains("stage.toml"), "names the file: {from_file}");
}

/// A channel beyond the device's: ALSA's `null` device (two channels, defined by alsa-lib's own
/// configuration) refuses channel 3, naming both.
#[test]
#[cfg_attr(not(target_os = "linux"), ignore = "ALSA's null device is Linux's")]
fn a_channel_beyond_the_device_s_is_refused() {
    let bind = format!("127.0.0.1:{}", free_port());
    let line = osc_timecode("ltc_channel_beyond")
        .args(["listen", "--bind", &bind, "--ltc", "null", "--ltc-channel", "3", "--duration", "1"])
        .fails();
    assert_eq!(line, "LTC to null: LTC channel 3 is beyond the device's 2 channels");
}

/// How to get what the JACK test needs.
const JACK_INSTALL: &str = "apt-get install jackd2 libasound2-plugins libltc11";

/// Fails the calling test when a tool the JACK test needs is missing.
fn require_jack_tools() {
    for tool in ["jackd", "jack_rec", "jack_lsp", "jack_wait"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(found, "{tool} is not installed: this test needs it ({JACK_INSTALL}; .ci/run does this)");
    }
    let plugin = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib"]
        .iter()
        .any(|dir| Path::new(dir).join("alsa-lib/libasound_module_pcm_jack.so").exists());
    assert!(plugin, "ALSA's jack PCM plugin is not installed: this test needs it ({JACK_INSTALL})");
    libltc::require_libltc();
}

/// Waits until `ready` says so, at most `timeout`.
fn wait_for(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < timeout, "{what} within {timeout:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Channel `channel` (0-based) of a 16-bit WAV file as Python's `wave` module reads it, full
/// scale ±1, and every channel's peak.
fn read_wav_channel(path: &Path, channel: usize) -> (Vec<f32>, Vec<i32>) {
    const SCRIPT: &str = r#"
import struct, sys, wave
w = wave.open(sys.argv[1])
n, ch, width = w.getnframes(), w.getnchannels(), w.getsampwidth()
assert width == 2 and w.getframerate() == 48000, (width, w.getframerate())
s = struct.unpack('<%dh' % (n * ch), w.readframes(n))
print(' '.join(str(max((abs(v) for v in s[c::ch]), default=0)) for c in range(ch)))
sys.stdout.flush()
sys.stdout.buffer.write(struct.pack('<%df' % n, *(v / 32768 for v in s[int(sys.argv[2])::ch])))
"#;
    let out =
        Command::new("python3").args(["-c", SCRIPT]).arg(path).arg(channel.to_string()).output().expect("python3");
    assert!(out.status.success(), "reading {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    let at = out.stdout.iter().position(|b| *b == b'\n').expect("the peaks line");
    let peaks = std::str::from_utf8(&out.stdout[..at]).unwrap().split(' ').map(|p| p.parse().unwrap()).collect();
    let samples = out.stdout[at + 1..].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    (samples, peaks)
}

/// LTC on a real cpal stream: an ALSA device (the `jack` PCM plugin, defined in the test's
/// `~/.asoundrc`) that plays into `jack_rec` on a JACK dummy server. `osc-timecode outputs`
/// lists the device; `listen --ltc ltctest --ltc-channel 2` chasing `serve` plays LTC on its
/// second channel at the default -18 dBFS, silence on the first; libltc reads every word of the
/// recording, labels consecutive (25 fps, the master's), words one frame apart within half a
/// bit.
#[test]
#[ignore = "needs jackd, libasound2-plugins and libltc (Linux): apt-get install jackd2 libasound2-plugins libltc11"]
fn ltc_on_an_alsa_device_is_read_back_by_libltc() {
    require_jack_tools();
    let cmd = osc_timecode("ltc_alsa_jack");
    let dir: PathBuf = cmd.dir().to_owned();
    let jack = JackRig::start(&dir, "jackrec:input");
    let server = jack.server.clone();
    let recording = dir.join("recorded.wav");
    let mut rec = jack.command("jack_rec");
    let mut rec = KillOnDrop(
        rec.arg("-f")
            .arg(&recording)
            .args(["-d", "6", "-b", "16", "system:capture_1", "system:capture_2"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("jack_rec"),
    );
    wait_for("jack_rec's ports", Duration::from_secs(10), || {
        jack.command("jack_lsp").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("jackrec:input2"))
    });

    let home = dir.to_str().expect("a UTF-8 scratch path");
    let listed = osc_timecode("ltc_alsa_jack_list")
        .env("HOME", home)
        .env("JACK_DEFAULT_SERVER", &server)
        .args(["outputs"])
        .run();
    assert!(
        listed.stdout.contains("--ltc ltctest") && listed.stdout.contains("LTC test into JACK: 2 channels, 48000 Hz"),
        "{}",
        listed.stdout
    );

    let (listen_port, cues) = (free_port(), free_port());
    let serve = KillOnDrop(
        osc_timecode("ltc_alsa_jack_serve")
            .args(["serve", "--rate", "25", "--quiet", "--listen", &format!("127.0.0.1:{cues}")])
            .args(["--to", &format!("127.0.0.1:{listen_port}")])
            .spawn(),
    );
    let mut listen = osc_timecode("ltc_alsa_jack_listen");
    listen.env("HOME", home).env("JACK_DEFAULT_SERVER", &server).env("JACK_NO_START_SERVER", "1");
    let run = listen
        .args(["listen", "--bind", &format!("127.0.0.1:{listen_port}"), "--ltc", "ltctest", "--ltc-channel", "2"])
        .args(["--duration", "3"])
        .run();
    drop(serve);
    run.assert_no_panic();
    assert_eq!(run.output.status.code(), Some(0), "listen: {}", run.stderr);
    assert!(!run.stderr.contains("osc-timecode:"), "nothing to say: {}", run.stderr);
    assert!(rec.0.wait().expect("jack_rec").success(), "jack_rec ends after its 6 s");

    let (samples, peaks) = read_wav_channel(&recording, 1);
    assert_eq!(peaks[0], 0, "silence on channel 1");
    let decoded = libltc::decode(&samples, 48_000, FrameRate::FPS_25, "ALSA into JACK");
    assert!(decoded.len() >= 50, "about 3 s of words at 25 fps: {} decoded", decoded.len());
    let frame = |label: &str| Timecode::parse(label, FrameRate::FPS_25).expect("a label").to_frame();
    for pair in decoded.windows(2) {
        assert_eq!(
            frame(&pair[1].label),
            frame(&pair[0].label) + 1,
            "consecutive: {} {}",
            pair[0].label,
            pair[1].label
        );
        let spacing = pair[1].off_start - pair[0].off_start;
        // A frame is 1920 samples; a word on the same timeline is at most half a bit (12) longer
        // or shorter: the chase refining its lock, the device clock steered.
        assert!(
            (1920 - 13..=1920 + 13).contains(&spacing),
            "{} to {}: {spacing} samples",
            pair[0].label,
            pair[1].label
        );
    }
    for d in &decoded {
        assert!(!d.df, "{}", d.label);
        assert!((d.peak_dbfs + 18.0).abs() < 0.2, "{}: -18 dBFS, not {}", d.label, d.peak_dbfs);
    }
}

/// A JACK server on its dummy backend, and a `~/.asoundrc` in
/// `home` defining the ALSA device `ltctest`: two channels played into JACK ports
/// `{ports}1` and `{ports}2`.
struct JackRig {
    /// The server's name (`JACK_DEFAULT_SERVER`).
    server: String,
    /// The server, stopped when the rig is dropped.
    jackd: KillOnDrop,
    /// One JACK server at a time in this process: two starting together here fail. Held until
    /// the rig is dropped (declared last: dropped after the server).
    _one_at_a_time: std::sync::MutexGuard<'static, ()>,
}

/// See [`JackRig`]'s guard.
static JACK: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl JackRig {
    fn start(home: &Path, ports: &str) -> Self {
        let asoundrc = format!(
            "pcm.ltctest {{\n  type jack\n  playback_ports {{\n    0 \"{ports}1\"\n    1 \"{ports}2\"\n  }}\n  \
             hint {{\n    show on\n    description \"LTC test into JACK\"\n  }}\n}}\n"
        );
        std::fs::write(home.join(".asoundrc"), asoundrc).expect("the .asoundrc");
        // One fixed name: JACK's registry holds 8 servers, and the entry of one that died is
        // reclaimed only by a server of the same name.
        let server = "osc-timecode-test-ltc-device".to_owned();
        let guard = JACK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let log = std::fs::File::create(home.join("jackd.log")).expect("jackd.log");
        let mut rig =
            Self { server, jackd: KillOnDrop(Command::new("true").spawn().expect("true")), _one_at_a_time: guard };
        rig.jackd = KillOnDrop(
            rig.command("jackd")
                .args(["-n", &rig.server, "-d", "dummy", "-r", "48000", "-p", "256"])
                .stdout(log.try_clone().expect("jackd.log"))
                .stderr(log)
                .spawn()
                .expect("jackd"),
        );
        let mut wait = rig.command("jack_wait");
        wait.args(["-s", &rig.server, "-w", "-t", "10"]).stdout(Stdio::null());
        let log = || std::fs::read_to_string(home.join("jackd.log")).unwrap_or_default();
        assert!(wait.status().is_ok_and(|s| s.success()), "the JACK server starts: {}", log());
        rig
    }

    /// Ends the server as its users would (SIGTERM through `kill(1)`: it unregisters itself;
    /// a SIGKILL would leave its registry entry behind).
    fn stop(&mut self) {
        let _ = Command::new("kill").arg(self.jackd.0.id().to_string()).status();
        let _ = self.jackd.0.wait();
    }

    /// `tool`, talking to this server only.
    fn command(&self, tool: &str) -> Command {
        let mut c = Command::new(tool);
        c.env("JACK_DEFAULT_SERVER", &self.server)
            .env("JACK_NO_AUDIO_RESERVATION", "1")
            .env("JACK_NO_START_SERVER", "1");
        c
    }
}

/// A device that stops asking for samples (its JACK server killed while LTC plays): one line
/// naming the output, LTC stops, `listen` goes on to its end and exits 0.
#[test]
#[ignore = "needs jackd and libasound2-plugins (Linux): apt-get install jackd2 libasound2-plugins libltc11"]
fn a_device_that_stops_is_said_once_and_listen_goes_on() {
    require_jack_tools();
    let cmd = osc_timecode("ltc_alsa_jack_stops");
    let dir: PathBuf = cmd.dir().to_owned();
    let mut jack = JackRig::start(&dir, "system:playback_");
    let mut listen = osc_timecode("ltc_alsa_jack_stops_listen")
        .env("HOME", dir.to_str().expect("a UTF-8 scratch path"))
        .env("JACK_DEFAULT_SERVER", &jack.server)
        .env("JACK_NO_START_SERVER", "1")
        .args(["listen", "--bind", &format!("127.0.0.1:{}", free_port()), "--ltc", "ltctest", "--duration", "5"])
        .spawn();
    let streams = util::Streams::take(&mut listen);
    let mut listen = KillOnDrop(listen);
    std::thread::sleep(Duration::from_millis(1500));
    jack.stop();
    let status = listen.0.wait().expect("listen");
    // Give the reader threads the last lines.
    std::thread::sleep(Duration::from_millis(200));
    let stderr = streams.stderr();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(status.code(), Some(0), "listen goes on to its end: {stderr}");
    // libjack writes its own complaints; ours are the lines with our prefix.
    let ours: Vec<&str> = stderr.lines().filter(|l| l.starts_with("osc-timecode:")).collect();
    assert_eq!(
        ours,
        ["osc-timecode: LTC to ltctest: the device stopped asking for samples; LTC stops here, the rest goes on"],
        "{stderr}"
    );
}

impl Drop for JackRig {
    fn drop(&mut self) {
        self.stop();
    }
}
