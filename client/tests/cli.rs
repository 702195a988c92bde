//! The `osc-timecode` binary end to end: the reference vectors through `convert`'s batch mode
//! (one process per rate, not per row), errors as one line with exit status 1 (ran, but not
//! done) or 2 (usage or setup), config precedence, a reader that hangs up early, and the shell
//! completions and man pages generated from the command line.

mod util;

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use util::{group_by, osc_timecode, reference_rows};

const TIMECODE_HEADER: [&str; 6] = ["rate_label", "fps_num", "fps_den", "drop", "frame_index", "timecode"];
const SAMPLE_HEADER: [&str; 5] =
    ["rate_label", "sample_rate", "sample_pos", "expected_frame_index", "expected_timecode"];
const INVALID_HEADER: [&str; 3] = ["rate_label", "timecode", "reason"];

/// Labels in one day per reference rate label (core/tests/data/README.md, convention 4).
fn frames_per_day(rate_label: &str) -> i64 {
    match rate_label {
        "23.976" | "24" => 2_073_600,
        "25" => 2_160_000,
        "29.97ndf" | "30" => 2_592_000,
        "29.97df" => 2_589_408,
        "50" => 4_320_000,
        "59.94ndf" | "60" => 5_184_000,
        "59.94df" => 5_178_816,
        other => panic!("rate label {other:?} not in the reference README"),
    }
}

/// Lines of `stdout`, checked to be one per input line.
fn results(stdout: &str, inputs: usize, what: &str) -> Vec<String> {
    let lines: Vec<String> = stdout.lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), inputs, "{what}: one result per input line");
    lines
}

/// Converts `inputs` (one per line) in one process and returns one result per input.
fn batch(test: &str, args: &[&str], inputs: &[String]) -> Vec<String> {
    let stdout = osc_timecode(test).args(["convert"]).args(args).stdin(inputs.join("\n") + "\n").stdout();
    results(&stdout, inputs.len(), &format!("convert {}", args.join(" ")))
}

#[test]
fn the_issue_example() {
    let out = osc_timecode("the_issue_example").args(["convert", "--rate", "29.97df", "--frames", "1800"]).stdout();
    assert_eq!(out, "00:01:00;02\n");
}

#[test]
fn single_values_of_every_kind() {
    let cases: [(&[&str], &str); 12] = [
        (&["--rate", "29.97df", "--timecode", "00:01:00;02"], "1800"),
        (&["--rate", "29.97df", "--timecode", "01:00:00;00", "--to", "seconds"], "3599.996400000"),
        (&["--rate", "29.97df", "--seconds", "3600"], "01:00:00;00"),
        (&["--rate", "29.97", "--seconds", "3600"], "00:59:56:12"),
        (&["--rate", "59.94df", "--frames", "-1"], "23:59:59;59"),
        (&["--rate", "29.97df", "--frames", "-1", "--to", "seconds"], "-0.033366666"),
        (&["--rate", "29.97df", "--frames", "1", "--to", "seconds"], "0.033366667"),
        (&["--rate", "25", "--seconds", "-1.5", "--to", "frames"], "-38"),
        (&["--rate", "25", "--sample-rate", "48000", "--samples", "172800000"], "01:00:00:00"),
        (&["--rate", "24", "--sample-rate", "44100", "--timecode", "00:10:00:00", "--to", "samples"], "26460000"),
        (&["--rate", "23.976", "--timecode", "00:00:01:00", "--to", "seconds"], "1.001000000"),
        (&["--rate", "25", "--frames=-25", "--to", "timecode"], "23:59:59:00"),
    ];
    for (args, want) in cases {
        let out = osc_timecode("single_values_of_every_kind").args(["convert"]).args(args).stdout();
        assert_eq!(out, format!("{want}\n"), "convert {}", args.join(" "));
    }
}

/// Every row of `timecode_vectors.csv`: frame → label, label → frame within the day, and
/// frame → seconds (the frame's start, `n × den / num` s, rounded up to a whole nanosecond) →
/// the same frame.
#[test]
fn timecode_vectors() {
    let rows = reference_rows("timecode_vectors.csv", &TIMECODE_HEADER);
    let mut checked = 0;
    for (rate, group) in group_by(&rows, |r| r[0].clone()) {
        let test = "timecode_vectors";
        let frames: Vec<String> = group.iter().map(|r| r[4].clone()).collect();
        let labels: Vec<String> = group.iter().map(|r| r[5].clone()).collect();

        let got = batch(test, &["--rate", &rate, "--from", "frames", "--to", "timecode"], &frames);
        for ((frame, label), got) in frames.iter().zip(&labels).zip(&got) {
            assert_eq!(got, label, "{rate}: frame {frame} → timecode");
        }

        let got = batch(test, &["--rate", &rate, "--from", "timecode", "--to", "frames"], &labels);
        let day = frames_per_day(&rate);
        for ((frame, label), got) in frames.iter().zip(&labels).zip(&got) {
            let want = frame.parse::<i64>().expect("frame_index").rem_euclid(day);
            assert_eq!(got, &want.to_string(), "{rate}: timecode {label} → frame (row frame {frame})");
        }

        let seconds = batch(test, &["--rate", &rate, "--from", "frames", "--to", "seconds"], &frames);
        for (row, got) in group.iter().zip(&seconds) {
            let (num, den): (i128, i128) = (row[1].parse().expect("fps_num"), row[2].parse().expect("fps_den"));
            let frame: i128 = row[4].parse().expect("frame_index");
            let exact = frame * den * 1_000_000_000;
            // Ceiling of exact / num, from truncating division.
            let nanos = exact / num + i128::from(exact % num > 0);
            let sign = if nanos < 0 { "-" } else { "" };
            let want = format!("{sign}{}.{:09}", nanos.abs() / 1_000_000_000, nanos.abs() % 1_000_000_000);
            assert_eq!(got, &want, "{rate}: frame {frame} → seconds");
        }
        let back = batch(test, &["--rate", &rate, "--from", "seconds", "--to", "frames"], &seconds);
        assert_eq!(back, frames, "{rate}: seconds → frames gives the frames back");
        checked += group.len();
    }
    assert_eq!(checked, rows.len());
}

/// Every row of `sample_vectors.csv`: sample → frame (not wrapped) and → label; and the
/// frame's first sample (`--to samples`) is at or before the position, the next frame's after.
#[test]
fn sample_vectors() {
    let rows = reference_rows("sample_vectors.csv", &SAMPLE_HEADER);
    let mut checked = 0;
    for ((rate, hz), group) in group_by(&rows, |r| (r[0].clone(), r[1].clone())) {
        let test = "sample_vectors";
        let common = ["--rate", rate.as_str(), "--sample-rate", hz.as_str()];
        let samples: Vec<String> = group.iter().map(|r| r[2].clone()).collect();

        let got = batch(test, &[&common[..], &["--from", "samples", "--to", "frames"]].concat(), &samples);
        for (row, got) in group.iter().zip(&got) {
            assert_eq!(got, &row[3], "{rate} @ {hz} Hz: sample {} → frame", row[2]);
        }
        let got = batch(test, &[&common[..], &["--from", "samples"]].concat(), &samples);
        for (row, got) in group.iter().zip(&got) {
            assert_eq!(got, &row[4], "{rate} @ {hz} Hz: sample {} → timecode", row[2]);
        }

        let frames: Vec<String> = group
            .iter()
            .flat_map(|r| {
                let f: i64 = r[3].parse().expect("expected_frame_index");
                [f.to_string(), (f + 1).to_string()]
            })
            .collect();
        let starts = batch(test, &[&common[..], &["--from", "frames", "--to", "samples"]].concat(), &frames);
        for (row, pair) in group.iter().zip(starts.chunks(2)) {
            let pos: i64 = row[2].parse().expect("sample_pos");
            let (start, next): (i64, i64) = (pair[0].parse().expect("start"), pair[1].parse().expect("next"));
            assert!(
                start <= pos && pos < next,
                "{rate} @ {hz} Hz: sample {pos} in frame {} which runs {start}..{next}",
                row[3]
            );
        }
        checked += group.len();
    }
    assert_eq!(checked, rows.len());
}

/// Every row of `invalid_timecodes.csv` is exit status 2 and one line saying why.
#[test]
fn invalid_timecodes() {
    let rows = reference_rows("invalid_timecodes.csv", &INVALID_HEADER);
    for row in &rows {
        let (rate, label, reason) = (&row[0], &row[1], &row[2]);
        let why = match reason.as_str() {
            "dropped_label" => "drop-frame skips it",
            "out_of_range" => "out of range",
            "wrong_separator" => "wrong separator",
            "malformed" => "malformed timecode",
            other => panic!("reason {other:?} not in the reference README"),
        };
        let error = osc_timecode("invalid_timecodes").args(["convert", "--rate", rate, "--timecode", label]).fails();
        assert!(error.contains(why), "{rate} {label:?} ({reason}): {error:?} should say {why:?}");
        assert!(error.contains(label.as_str()), "{rate} {label:?}: the message names the label: {error:?}");
    }
}

/// In batch mode bad lines are reported with their number and skipped; the rest are converted
/// and the exit status says something failed.
#[test]
fn batch_reports_bad_lines_and_carries_on() {
    let run = osc_timecode("batch_reports_bad_lines")
        .args(["convert", "--rate", "29.97df"])
        .stdin("1800\n\n00:01:00;00\n  -1  \r\n1.5\n00:01:00;02\n")
        .run();
    run.assert_no_panic();
    assert_eq!(run.output.status.code(), Some(1), "ran, but not every line was converted; stderr: {}", run.stderr);
    assert_eq!(run.stdout, "00:01:00;02\n23:59:59;29\n1800\n");
    let errors: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(errors.len(), 3, "two bad lines and a summary: {:?}", run.stderr);
    assert!(errors[0].starts_with("osc-timecode: line 3: timecode 00:01:00;00 does not exist"), "{}", errors[0]);
    assert!(errors[1].starts_with("osc-timecode: line 5: invalid frame index \"1.5\""), "{}", errors[1]);
    assert!(errors[1].contains("--from seconds"), "hint: {}", errors[1]);
    assert_eq!(errors[2], "osc-timecode: 2 of 5 values could not be converted");

    let out = osc_timecode("batch_auto_detects")
        .args(["convert", "--rate", "25", "--to", "seconds"])
        .stdin("00:00:01:00\n50\n")
        .stdout();
    assert_eq!(out, "1.000000000\n2.000000000\n", "':' means timecode, else frames");
}

#[test]
fn unknown_rate() {
    for rate in ["29.98", "29", "25df", "23.976df", ""] {
        let error = osc_timecode("unknown_rate").args(["convert", "--rate", rate, "--frames", "0"]).fails();
        assert!(
            error.contains("frame rate") && error.contains("29.97df") && error.contains("59.94"),
            "--rate {rate:?}: the message lists the valid names: {error}"
        );
    }
    let error =
        osc_timecode("unknown_rate_env").env("OSC_TIMECODE_RATE", "30df").args(["convert", "--frames", "0"]).fails();
    assert!(error.contains("unknown frame rate \"30df\"") && error.contains("OSC_TIMECODE_RATE"), "{error}");
}

#[test]
fn missing_or_bad_sample_rate() {
    let cases: [&[&str]; 3] = [&["--samples", "48000"], &["--frames", "25", "--to", "samples"], &["--from", "samples"]];
    for args in cases {
        let error = osc_timecode("missing_sample_rate").args(["convert"]).args(args).stdin("0\n").fails();
        assert!(error.contains("sample rate") && error.contains("--sample-rate"), "{args:?}: {error}");
    }
    for hz in ["0", "-48000", "1536001", "48k"] {
        let error = osc_timecode("bad_sample_rate").args(["convert", "--sample-rate", hz, "--samples", "0"]).fails();
        assert!(error.contains("--sample-rate"), "--sample-rate {hz}: {error}");
    }
}

#[test]
fn other_errors_are_one_line() {
    let cases: [&[&str]; 10] = [
        &[],
        &["conv"],
        &["convert", "--frames", "1", "--samples", "2"],
        &["convert", "--frames", "x"],
        &["convert", "--frames", "99999999999999999999"],
        &["convert", "--seconds", "1e3"],
        &["convert", "--seconds", "99999999999999999999"],
        &["convert", "--frames", "1", "--to", "pictures"],
        &["convert", "--frames", "1", "--from", "frames"],
        &["convert", "--timecode", "-00:00:05:00"],
    ];
    for args in cases {
        let error = osc_timecode("other_errors").args(args).fails();
        assert!(!error.is_empty(), "{args:?}");
    }
}

/// Flag beats environment beats config file beats the built-in default, for the rate and the
/// sample rate; `--config` beats `OSC_TIMECODE_CONFIG`.
#[test]
fn config_precedence() {
    let test = "config_precedence";
    // Frame 45 is a different label at each of the rates involved.
    let label = |cmd: &mut util::Cmd| cmd.args(["convert", "--frames", "45"]).stdout();
    let label_at = |cmd: &mut util::Cmd, rate: &str| cmd.args(["convert", "--frames", "45", "--rate", rate]).stdout();
    assert_eq!(label(&mut osc_timecode(test)), "00:00:01:20\n", "built-in default: 25");

    let file = "[plugin]\nkeepalive_ms = 500\n\n[client]\nrate = \"30\"\nsample_rate = 44100\n";
    assert_eq!(label(osc_timecode(test).write_config(file)), "00:00:01:15\n", "file: 30");
    assert_eq!(
        label(osc_timecode(test).write_config(file).env("OSC_TIMECODE_RATE", "50")),
        "00:00:00:45\n",
        "environment beats file"
    );
    assert_eq!(
        label_at(osc_timecode(test).write_config(file).env("OSC_TIMECODE_RATE", "50"), "24"),
        "00:00:01:21\n",
        "flag beats environment"
    );

    // The first sample of frame 1 at 25 fps: 1/25 s.
    let sample = |cmd: &mut util::Cmd, flag: &[&str]| {
        cmd.args(["convert", "--rate", "25", "--frames", "1", "--to", "samples"]).args(flag).stdout()
    };
    assert_eq!(sample(osc_timecode(test).write_config(file), &[]), "1764\n", "file: 44100");
    assert_eq!(
        sample(osc_timecode(test).write_config(file).env("OSC_TIMECODE_SAMPLE_RATE", "48000"), &[]),
        "1920\n",
        "environment beats file"
    );
    assert_eq!(
        sample(
            osc_timecode(test).write_config(file).env("OSC_TIMECODE_SAMPLE_RATE", "48000"),
            &["--sample-rate", "96000"]
        ),
        "3840\n",
        "flag beats environment"
    );

    let mut cmd = osc_timecode(test);
    cmd.write_config(file);
    let other = cmd.write_file("other.toml", "[client]\nrate = \"60\"\n");
    let out = cmd.args(["--config"]).args([&other]).args(["convert", "--frames", "45"]).stdout();
    assert_eq!(out, "00:00:00:45\n", "--config beats the environment's file");
    let mut cmd = osc_timecode(test);
    let other = cmd.write_file("other.toml", "[client]\nrate = \"24\"\n");
    let out = cmd.args(["convert", "--frames", "45", "--config"]).args([&other]).stdout();
    assert_eq!(out, "00:00:01:21\n", "--config after the subcommand");
}

#[test]
fn malformed_config_files() {
    let cases = [
        ("[client\n", "line 1"),
        ("[client]\nrate = \"26\"\n", "line 2"),
        ("[client]\nrate = 29.97\n", "quoted"),
        ("[client]\nsample_rate = 0\n", "out of range"),
        ("[client]\nsample-rate = 48000\n", "unknown field"),
        ("[client]\nrecord_max_bytes = nan\n", "whole number of bytes"),
        ("[client]\nrecord_max_bytes = -1\n", "record size"),
        ("[client]\nlisten_from = [\"10.0.0.0/33\"]\n", "line 2"),
        ("[client]\nrate = \n", "line 2"),
    ];
    for (text, why) in cases {
        let mut cmd = osc_timecode("malformed_config_files");
        cmd.write_config(text);
        let path = cmd.dir().join("config.toml");
        // Even with every value on the command line: a broken config is never silently skipped.
        let error = cmd.args(["convert", "--rate", "25", "--frames", "1"]).fails();
        assert!(
            error.contains(&path.display().to_string()) && error.contains("invalid") && error.contains(why),
            "{text:?}: {error}"
        );
    }
    let mut cmd = osc_timecode("missing_explicit_config");
    let missing = cmd.dir().join("missing.toml");
    let error = cmd.args(["--config"]).args([&missing]).args(["convert", "--frames", "1"]).fails();
    assert!(error.starts_with("could not read config file"), "{error}");
}

/// Regression (issue 14): `listen --duration nan` panicked with a backtrace. Every number a flag
/// takes is range-checked: one line naming the flag, exit status 2, never a panic. NaN and
/// infinities, negative lengths of time, absurd magnitudes, exponents.
#[test]
fn every_number_from_a_flag_is_range_checked() {
    let cases: &[(&[&str], &str)] = &[
        (&["listen", "--duration", "nan"], "--duration"),
        (&["listen", "--duration", "NaN"], "--duration"),
        (&["listen", "--duration", "inf"], "--duration"),
        (&["listen", "--duration", "-inf"], "--duration"),
        (&["listen", "--duration", "-1"], "negative"),
        (&["listen", "--duration", "1e3"], "--duration"),
        (&["listen", "--duration", "99999999999"], "at most 31622400 s"),
        (&["listen", "--duration", "1e400"], "--duration"),
        (&["listen", "--freewheel-frames", "0"], "--freewheel-frames"),
        (&["listen", "--lock-frames", "nan"], "--lock-frames"),
        (&["serve", "--keepalive-ms", "-1"], "--keepalive-ms"),
        (&["serve", "--keepalive-ms", "nan"], "--keepalive-ms"),
        (&["listen", "--freewheel-frames", "-5"], "--freewheel-frames"),
        (&["cue", "1", "--timeout-ms", "-250"], "--timeout-ms"),
        (&["cue", "1", "-1"], "value"),
        (&["cue", "1", "--timeout-ms", "0"], "--timeout-ms"),
        (&["cue", "1", "--timeout-ms", "inf"], "--timeout-ms"),
        (&["cue", "1", "--retries", "1e9"], "--retries"),
        (&["cue", "1", "nan"], "value"),
        (&["cue", "1", "inf"], "value"),
        (&["convert", "--frames", "1", "--sample-rate", "nan", "--to", "samples"], "sample rate"),
        (&["convert", "--seconds", "nan"], "--seconds"),
        (&["convert", "--seconds", "inf"], "--seconds"),
        (&["listen", "--record-max-bytes", "nan"], "record size"),
        (&["listen", "--record-max-bytes", "-1"], "record size"),
        (&["listen", "--record-max-bytes", "inf"], "record size"),
        (&["listen", "--record-max-bytes", "1e9"], "record size"),
        (&["listen", "--record-max-bytes", "99999999999GiB"], "record size"),
    ];
    for (args, needle) in cases {
        let error = osc_timecode("numbers_from_flags").args(*args).fails();
        assert!(error.contains(needle), "{args:?}: {needle:?} in {error:?}");
    }
    // The good ones still work: a decimal --duration ends listen on time, exit status 0.
    let port = util::free_port().to_string();
    for duration in ["0", "0.2", "0.000000001"] {
        let out = osc_timecode("numbers_from_flags")
            .args(["listen", "--json", "--bind", &format!("127.0.0.1:{port}"), "--duration", duration])
            .stdout();
        assert!(duration != "0.2" || out.contains("\"state\":\"waiting\""), "--duration {duration}: {out}");
    }
}

/// A config file nested absurdly deep (arrays, inline tables, table headers and dotted keys a
/// hundred thousand levels down) is one line and exit status 2, not a stack overflow: the TOML
/// parser's recursion limit holds for every form (issue 14, item 1).
#[test]
fn a_deeply_nested_config_file_is_refused_without_overflowing_the_stack() {
    let n = 100_000;
    let keys = vec!["a"; n].join(".");
    let cases = [
        format!("x = {}{}\n", "[".repeat(n), "]".repeat(n)),
        format!("x = {}1{}\n", "{a=".repeat(n), "}".repeat(n)),
        format!("[{keys}]\n"),
        format!("[[{keys}]]\n"),
        format!("{keys} = 1\n"),
        format!("[client]\nrate = \"25\"\n[client.{keys}]\n"),
        format!("[client]\nx = {}{}\n", "[".repeat(n), "]".repeat(n)),
    ];
    for text in cases {
        let mut cmd = osc_timecode("deep_config");
        cmd.write_config(&text);
        let error = cmd.args(["convert", "--frames", "1"]).fails();
        assert!(error.contains("config.toml is invalid") && error.len() < 300, "{}…: {error}", &text[..20]);
    }
}

/// `osc-timecode convert ... | head -1`: the reader hangs up while the command still has lines
/// to write. It stops quietly: status 0, nothing on standard error.
#[test]
fn broken_pipe_is_quiet() {
    let dir = osc_timecode("broken_pipe_is_quiet").dir().to_owned();
    let mut child = Command::new(&*util::BIN)
        .args(["convert", "--rate", "25"])
        .env("OSC_TIMECODE_CONFIG", dir.join("config.toml"))
        .env_remove("OSC_TIMECODE_RATE")
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        // 2 MB of input, 12 MB of output: far beyond any pipe buffer. Stops when the command
        // exits and the pipe breaks.
        let chunk = "1234567\n".repeat(1024);
        for _ in 0..256 {
            if stdin.write_all(chunk.as_bytes()).is_err() {
                break;
            }
        }
    });
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("first line");
    assert_eq!(first, "13:43:02:17\n");
    drop(stdout);

    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("osc-timecode kept running after its reader went away");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    writer.join().expect("writer");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr).expect("stderr");
    assert!(stderr.is_empty(), "nothing on stderr after a broken pipe, got {stderr:?}");
    assert_eq!(status.code(), Some(0), "status after a broken pipe");
}

#[test]
fn help_has_examples() {
    for args in [&["--help"][..], &["convert", "--help"], &["help", "convert"]] {
        let out = osc_timecode("help_has_examples").args(args).stdout();
        assert!(out.contains("Examples:"), "{args:?}: {out}");
        assert!(out.contains("convert --rate 29.97df --frames 1800"), "{args:?}: the issue's example");
        assert!(out.contains("[client]") || out.contains("OSC_TIMECODE_RATE"), "{args:?}: where defaults come from");
    }
    let out = osc_timecode("help_has_examples").args(["convert", "-h"]).stdout();
    assert!(out.contains("--timecode") && out.contains("convert --help"), "short help points to the long one: {out}");
    let out = osc_timecode("help_has_examples").args(["--version"]).stdout();
    assert!(out.starts_with("osc-timecode "), "{out}");
}

/// Every command, as the user types it: frozen, since scripts, completions and man pages name
/// them.
const COMMANDS: [&str; 9] =
    ["convert", "cue", "trigger", "serve", "listen", "outputs", "discover", "completions", "man"];

/// The exit statuses `--help` documents, one case of each kind: 0 done, 1 ran but not done,
/// 2 usage or setup error.
#[test]
fn exit_statuses() {
    let help = osc_timecode("exit_statuses").args(["--help"]).stdout();
    for line in ["Exit status:", "  0  done", "  1  ran, but not done", "  2  usage or setup error"] {
        assert!(help.contains(line), "--help lists {line:?}: {help}");
    }
    // A port nobody listens on, on loopback: the OS answers "port unreachable".
    let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    // (test, config file or "" for none, standard input, arguments, exit status)
    let cases: [(&str, &str, &str, &[&str], i32); 9] = [
        ("done", "", "", &["convert", "--rate", "25", "--frames", "25"], 0),
        ("done_batch", "", "25\n50\n", &["convert", "--rate", "25"], 0),
        ("some_lines_bad", "", "25\nnot a frame\n", &["convert", "--rate", "25"], 1),
        ("nobody_takes_the_cue", "", "", &["cue", "1", "--retries", "0", "--timeout-ms", "50", "--master", &closed], 1),
        ("bad_flag", "", "", &["convert", "--no-such-flag"], 2),
        ("bad_value", "", "", &["convert", "--rate", "26", "--frames", "1"], 2),
        ("no_command", "", "", &[], 2),
        ("bad_config", "[client]\nrate = 26\n", "", &["convert", "--frames", "1"], 2),
        ("bad_config_key", "[client]\nmastr = \"x\"\n", "", &["cue", "1", "--master", &closed], 2),
    ];
    for (test, config, stdin, args, want) in cases {
        let mut cmd = osc_timecode(test);
        if !config.is_empty() {
            cmd.write_config(config);
        }
        let run = cmd.args(args).stdin(stdin).run();
        run.assert_no_panic();
        let stderr = &run.stderr;
        assert_eq!(run.output.status.code(), Some(want), "{test}: osc-timecode {}; stderr: {stderr}", args.join(" "));
        let last = stderr.lines().last().unwrap_or("");
        assert_eq!(want == 0, last.is_empty(), "{test}: an error is a line on stderr: {stderr:?}");
    }
}

/// `osc-timecode completions SHELL`: a script that completes every command, read by the shell
/// without a syntax error where that shell is installed.
#[test]
fn completions_name_every_command() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        // A broken config file does not stand in the way: the script comes from the command line.
        let script = osc_timecode("completions").write_config("[client\n").args(["completions", shell]).stdout();
        for command in COMMANDS {
            assert!(script.contains(command), "{shell}: completes {command}: {script}");
        }
        assert!(script.contains("config") && script.contains("master"), "{shell}: completes the options");
        // The shells' own no-execute checks.
        let check: &[&str] = match shell {
            "bash" => &["bash", "-n"],
            "zsh" => &["zsh", "-n"],
            "fish" => &["fish", "--no-execute"],
            _ => continue,
        };
        let Ok(mut child) =
            Command::new(check[0]).args(&check[1..]).stdin(Stdio::piped()).stderr(Stdio::piped()).spawn()
        else {
            eprintln!("{shell} is not installed: its completion script is checked for the command names only");
            continue;
        };
        child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{shell} -n: {}", String::from_utf8_lossy(&out.stderr));
    }
    let error = osc_timecode("completions_bad").args(["completions", "tcsh"]).fails();
    assert!(error.contains("tcsh") && error.contains("bash"), "{error}");
}

/// `osc-timecode man`: roff pages, one per command, that list every command and the exit
/// statuses, and that groff renders without a warning where it is installed.
#[test]
fn man_pages() {
    let page = osc_timecode("man").write_config("[client\n").args(["man"]).stdout();
    assert!(page.lines().any(|l| l.starts_with(".TH osc-timecode 1 ")), "a title line: {page}");
    for section in [".SH NAME", ".SH SYNOPSIS", ".SH DESCRIPTION", ".SH OPTIONS", ".SH EXAMPLES", ".SH \"EXIT STATUS\""]
    {
        assert!(page.contains(section), "{section}: {page}");
    }
    for command in COMMANDS {
        assert!(page.contains(&format!("osc\\-timecode\\-{command}(1)")), "names {command}'s page: {page}");
    }
    let exit = &page[page.find(".SH \"EXIT STATUS\"").unwrap()..];
    for status in ["0  done", "1  ran, but not done", "2  usage or setup error"] {
        assert!(exit.contains(status), "exit status {status:?}: {exit}");
    }
    render(&page, "osc-timecode.1");

    // Every page into a directory, the way the install command writes them.
    let mut cmd = osc_timecode("man_dir");
    let dir = cmd.dir().join("man1");
    let listed = cmd.args([std::ffi::OsStr::new("man"), std::ffi::OsStr::new("--dir"), dir.as_os_str()]).stdout();
    let mut files: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    files.sort();
    let mut want: Vec<String> = COMMANDS.iter().map(|c| format!("osc-timecode-{c}.1")).collect();
    want.push("osc-timecode.1".to_owned());
    want.sort();
    assert_eq!(files, want);
    assert_eq!(listed.lines().count(), want.len(), "one path per page: {listed}");
    for command in COMMANDS {
        let file = dir.join(format!("osc-timecode-{command}.1"));
        let page = std::fs::read_to_string(&file).unwrap();
        let printed = osc_timecode("man_command").args(["man", command]).stdout();
        assert_eq!(page, printed, "{command}: the printed page is the installed one");
        assert!(page.contains(&format!(".TH osc-timecode-{command} 1 ")), "{page}");
        assert!(page.contains(".SH OPTIONS") && page.contains(".SH \"SEE ALSO\""), "{page}");
        render(&page, &format!("osc-timecode-{command}.1"));
    }
    let error = osc_timecode("man_bad").args(["man", "nope"]).fails();
    assert!(error.contains("nope") && error.contains("convert"), "{error}");
}

/// `page` through groff's man macros with every warning on, where groff is installed (the
/// structure checks above run everywhere).
fn render(page: &str, name: &str) {
    let Ok(mut child) = Command::new("groff")
        // Plain text: no overstriking, no escape sequences.
        .args(["-man", "-Tutf8", "-ww", "-P-cbou"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        eprintln!("groff is not installed: {name} is checked for its roff structure only");
        return;
    };
    let mut stdin = child.stdin.take().unwrap();
    let input = page.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    let (text, warnings) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && warnings.is_empty(), "groff on {name}: {warnings}");
    assert!(text.contains("SYNOPSIS") && text.contains("OPTIONS") && text.contains("osc-timecode"), "{name}: {text}");
}
