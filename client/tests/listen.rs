//! `osc-timecode listen` through the real binary, fed by a scripted master in the test: frames
//! encoded with rosc directly (not with the code under test), timetagged on an exact schedule,
//! sent to loopback only.

mod util;

use std::net::UdpSocket;
use std::time::{Duration, SystemTime};

use rosc::{OscBundle, OscMessage, OscPacket, OscTime, OscType};
use serde_json::Value;
use util::{KillOnDrop, free_port, osc_timecode};

/// Seconds between 1900 and 1970.
const NTP_UNIX: u64 = 2_208_988_800;

fn timetag(t: SystemTime) -> OscTime {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap();
    let frac = ((u64::from(d.subsec_nanos()) << 32) + 500_000_000) / 1_000_000_000;
    OscTime { seconds: (d.as_secs() + NTP_UNIX) as u32, fractional: frac.min(u64::from(u32::MAX)) as u32 }
}

/// `/sync/timecode` for frame `frame` at 25 fps (non-drop), as docs/PROTOCOL.md lists the fields.
fn frame_msg(frame: i64, playing: bool, seq: i64, jump: bool, looped: bool) -> OscMessage {
    let day = frame.rem_euclid(25 * 86_400);
    let (h, m, s, f) = (day / 90_000, day / 1500 % 60, day / 25 % 60, day % 25);
    OscMessage {
        addr: "/sync/timecode".into(),
        args: vec![
            OscType::String(format!("{h:02}:{m:02}:{s:02}:{f:02}")),
            OscType::Int(h as i32),
            OscType::Int(m as i32),
            OscType::Int(s as i32),
            OscType::Int(f as i32),
            OscType::Int(25),
            OscType::Int(1),
            OscType::Int(0),
            OscType::Long(frame),
            OscType::Int(i32::from(playing)),
            OscType::Long(seq),
            OscType::Int(i32::from(jump)),
            OscType::Int(i32::from(looped)),
        ],
    }
}

fn label(frame: i64) -> String {
    let OscType::String(s) = &frame_msg(frame, true, 0, false, false).args[0] else { unreachable!() };
    s.clone()
}

/// One scripted step: send this frame, heard at schedule slot `slot` (40 ms apart).
struct Step {
    slot: u32,
    frame: i64,
    jump: bool,
    looped: bool,
}

/// Sends `steps` to `port`, each 20 ms before the moment it is heard, starting 300 ms from now
/// (listen is up by then: the test waits for its socket).
fn play(port: u16, steps: Vec<Step>) -> std::thread::JoinHandle<()> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let t0 = SystemTime::now() + Duration::from_millis(300);
    std::thread::spawn(move || {
        for (seq, step) in steps.into_iter().enumerate() {
            let heard = t0 + Duration::from_millis(40) * step.slot;
            let send_at = heard - Duration::from_millis(20);
            if let Ok(wait) = send_at.duration_since(SystemTime::now()) {
                std::thread::sleep(wait);
            }
            let msg = frame_msg(step.frame, true, seq as i64, step.jump, step.looped);
            let packet =
                OscPacket::Bundle(OscBundle { timetag: timetag(heard), content: vec![OscPacket::Message(msg)] });
            socket.send_to(&rosc::encoder::encode(&packet).unwrap(), ("127.0.0.1", port)).unwrap();
        }
    })
}

fn steps(slots: std::ops::Range<u32>, first_frame: i64) -> Vec<Step> {
    slots
        .enumerate()
        .map(|(i, slot)| Step { slot, frame: first_frame + i as i64, jump: i == 0, looped: false })
        .collect()
}

/// Runs `listen --json` on a free port for `seconds` while `script` plays; returns its objects.
fn listen_json(test: &str, seconds: f64, extra: &[&str], script: impl FnOnce(u16) -> Vec<Step>) -> Vec<Value> {
    let port = free_port();
    let sender = play(port, script(port));
    let out = osc_timecode(test)
        .args(["listen", "--json", "--bind", &format!("127.0.0.1:{port}"), "--duration", &seconds.to_string()])
        .args(extra)
        .stdout();
    sender.join().unwrap();
    out.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect()
}

fn states(objs: &[Value]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for o in objs {
        let s = o["state"].as_str().unwrap().to_owned();
        if out.last() != Some(&s) {
            out.push(s);
        }
    }
    out
}

#[test]
fn locks_within_three_frames_and_shows_every_frame_in_order() {
    let objs = listen_json("listen_lock", 1.6, &[], |_| steps(0..25, 90_000));
    assert_eq!(states(&objs)[..3], ["waiting", "locking", "locked"], "{objs:?}");
    let first_locked = objs.iter().position(|o| o["state"] == "locked").unwrap();
    // Locked when the third frame arrives, 20 ms before it is heard: frame 90_001 is playing.
    assert_eq!(objs[first_locked]["frame"], 90_001, "{:?}", objs[first_locked]);
    // From there every frame once, in order, with its label, while locked.
    let locked: Vec<&Value> = objs[first_locked..].iter().take_while(|o| o["state"] == "locked").collect();
    assert!(locked.len() >= 20, "{locked:?}");
    for (i, o) in locked.iter().enumerate() {
        let frame = 90_001 + i as i64;
        assert_eq!(o["frame"], frame, "{o}");
        assert_eq!(o["timecode"], label(frame));
        assert_eq!(o["rate"], "25");
        assert_eq!(o["lost"], 0);
    }
}

#[test]
fn freewheels_through_a_gap_then_reports_lost() {
    // Ten frames, then silence.
    let objs = listen_json("listen_lost", 1.5, &["--freewheel-frames", "5"], |_| steps(0..10, 0));
    let seq = states(&objs);
    let tail: Vec<&str> = seq.iter().map(String::as_str).skip_while(|s| *s != "locked").collect();
    assert_eq!(tail, ["locked", "freewheel", "lost"], "{objs:?}");
    // While freewheeling the clock runs on past the last frame received (9).
    let wheeled: Vec<i64> =
        objs.iter().filter(|o| o["state"] == "freewheel").map(|o| o["frame"].as_i64().unwrap()).collect();
    assert!(wheeled.iter().all(|&f| f >= 10) && wheeled.len() >= 2, "{wheeled:?}");
    assert!(wheeled.windows(2).all(|w| w[1] == w[0] + 1), "{wheeled:?}");
    let lost = objs.iter().find(|o| o["state"] == "lost").unwrap();
    assert!(lost["frame"].is_null() && lost["timecode"].is_null(), "{lost}");
}

#[test]
fn flagged_jumps_and_loops_relock_at_once() {
    let objs = listen_json("listen_jump", 1.4, &[], |_| {
        let mut s = steps(0..8, 100);
        // A locate to 5000 (jump), then a loop back to 100 (jump + loop), each continuing.
        s.extend((8..14).map(|slot| Step { slot, frame: 5000 + i64::from(slot - 8), jump: slot == 8, looped: false }));
        s.extend((14..20).map(|slot| Step {
            slot,
            frame: 100 + i64::from(slot - 14),
            jump: slot == 14,
            looped: slot == 14,
        }));
        s
    });
    // Never back to locking after the first lock: the flagged jumps relock at once (the
    // freewheel at the end is the script ending).
    let seq = states(&objs);
    assert_eq!(seq[..3], ["waiting", "locking", "locked"], "{objs:?}");
    assert!(seq[3..].iter().all(|s| s == "freewheel" || s == "lost"), "{seq:?}");
    let frames: Vec<i64> = objs.iter().filter_map(|o| o["frame"].as_i64()).collect();
    let at = |f: i64| frames.iter().position(|&x| x == f).unwrap_or_else(|| panic!("frame {f} shown: {frames:?}"));
    assert!(at(107) < at(5000) && at(5000) < at(5005), "{frames:?}");
    // The loop: 5005 then 100 again.
    let after = &frames[at(5005)..];
    assert!(after.contains(&100) && after.contains(&105), "{frames:?}");
}

/// Issue 17: the line for a frame is printed when the frame starts, not when a datagram comes.
/// One timetagged frame far ahead, then nothing: the following frames are still shown, each
/// once, in order, and none is read here before it starts (listen's own clock is the same wall
/// clock). How soon after the start is the bench's business (section 5), not a test's.
#[test]
fn frames_are_shown_as_they_start_without_waiting_for_datagrams() {
    let port = free_port();
    let mut child = KillOnDrop(
        osc_timecode("listen_frame_start")
            .args(["listen", "--json", "--bind", &format!("127.0.0.1:{port}"), "--duration", "1.3"])
            .args(["--lock-frames", "1", "--freewheel-frames", "1000"])
            .spawn(),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while UdpSocket::bind(("127.0.0.1", port)).is_ok() {
        assert!(std::time::Instant::now() < deadline, "listen never bound {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Frame 1000 is heard 300 ms from now; the only datagram, sent at once.
    let first = 1000;
    let heard = SystemTime::now() + Duration::from_millis(300);
    let packet = OscPacket::Bundle(OscBundle {
        timetag: timetag(heard),
        content: vec![OscPacket::Message(frame_msg(first, true, 0, true, false))],
    });
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(&rosc::encoder::encode(&packet).unwrap(), ("127.0.0.1", port))
        .unwrap();
    let stdout = child.0.stdout.take().unwrap();
    let mut shown: Vec<(SystemTime, Value)> = Vec::new();
    for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
        let line = line.unwrap();
        let read = SystemTime::now();
        shown.push((read, serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))));
    }
    assert_eq!(child.0.wait().unwrap().code(), Some(0));
    let frames: Vec<(SystemTime, i64, &str)> =
        shown.iter().filter_map(|(read, o)| Some((*read, o["frame"].as_i64()?, o["state"].as_str()?))).collect();
    // Frames 1000 onward (the chase may extrapolate back from the upcoming frame before it is
    // heard; those come first), each once, in order, to about a second later.
    let from_first: Vec<&(SystemTime, i64, &str)> = frames.iter().skip_while(|(_, f, _)| *f < first).collect();
    assert!(from_first.len() >= 10, "{shown:?}");
    for (i, (read, frame, state)) in from_first.iter().enumerate() {
        assert_eq!(*frame, first + i as i64, "every frame once, in order: {frames:?}");
        assert!(matches!(*state, "locked" | "freewheel"), "{shown:?}");
        let starts = heard + Duration::from_millis(40) * i as u32;
        assert!(*read >= starts, "frame {frame} read {:?} before it starts", starts.duration_since(*read).unwrap());
    }
    // Nothing before frame 1000 was shown as frame 1000 or later before it was heard.
    assert!(frames.iter().all(|(read, f, _)| *f < first || *read >= heard), "{frames:?}");
}

#[test]
fn an_unflagged_discontinuity_is_locked_again_from_scratch() {
    let objs = listen_json("listen_unflagged", 1.0, &[], |_| {
        let mut s = steps(0..6, 0);
        s.extend((6..14).map(|slot| Step { slot, frame: 7000 + i64::from(slot), jump: false, looped: false }));
        s
    });
    assert_eq!(states(&objs)[..5], ["waiting", "locking", "locked", "locking", "locked"], "{objs:?}");
}

#[test]
fn plain_lines_when_not_a_terminal_and_a_record_of_every_packet() {
    let port = free_port();
    let sender = play(port, steps(0..6, 25));
    // Something that is not timecode, recorded with its reason.
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        UdpSocket::bind("127.0.0.1:0").unwrap().send_to(b"garbage!", ("127.0.0.1", port)).unwrap();
    });
    let mut cmd = osc_timecode("listen_plain");
    let record = cmd.dir().join("show.jsonl");
    let out = cmd
        .args(["listen", "--bind", &format!("127.0.0.1:{port}"), "--duration", "0.8", "--record"])
        .args([&record])
        .stdout();
    sender.join().unwrap();
    let locked: Vec<&str> = out.lines().filter(|l| l.contains("  locked  ")).collect();
    assert!(!locked.is_empty(), "{out}");
    assert!(locked[0].starts_with("00:00:01:01  25  locked  loss 0.0%  jitter "), "{out}");
    assert!(locked[0].ends_with(" ms"), "{out}");
    let lines: Vec<Value> =
        std::fs::read_to_string(&record).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 7, "six frames and the garbage: {lines:?}");
    let frames: Vec<i64> = lines.iter().filter_map(|l| l["frame"].as_i64()).collect();
    assert_eq!(frames, (25..31).collect::<Vec<_>>());
    assert!(lines.iter().all(|l| l["arrival_ns"].as_str().is_some_and(|s| s.parse::<i128>().is_ok())));
    assert!(lines.iter().filter(|l| l["error"].is_string()).count() == 1, "{lines:?}");
    assert_eq!(lines[0]["timecode"], "00:00:01:00");
}

#[test]
fn a_port_in_use_is_one_line() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let line = osc_timecode("listen_in_use").args(["listen", "--bind", &addr.to_string(), "--duration", "1"]).fails();
    assert!(line.starts_with(&format!("cannot listen on {addr}: ")), "{line}");
    assert!(line.ends_with("or add --wait-for-port to wait until it is free"), "says what to do: {line}");
}

#[test]
fn serve_to_listen_locks_within_a_few_frames_then_freewheels_and_is_lost_when_serve_ends() {
    let port = free_port();
    let serve = KillOnDrop(
        osc_timecode("listen_serve_master")
            .args(["serve", "--rate", "29.97df", "--start", "01:00:00;00", "--to", &format!("127.0.0.1:{port}")])
            .args(["--listen", &format!("127.0.0.1:{}", free_port())])
            .spawn(),
    );
    // Serve is killed 1.2 s into listen's 2 s.
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1200));
        drop(serve);
    });
    let out = osc_timecode("listen_serve")
        .args(["listen", "--json", "--bind", &format!("127.0.0.1:{port}"), "--duration", "2"])
        .stdout();
    killer.join().unwrap();
    let objs: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let first_locked = objs.iter().position(|o| o["state"] == "locked").unwrap_or_else(|| panic!("{objs:?}"));
    // Locked by the third packet at the latest.
    assert!(objs[first_locked]["received"].as_u64().unwrap() <= 3, "{:?}", objs[first_locked]);
    // Serve started at 01:00:00;00 (frame 107,892 at 29.97 DF) a moment before listen heard it.
    let frames: Vec<i64> =
        objs.iter().filter(|o| o["state"] == "locked").map(|o| o["frame"].as_i64().unwrap()).collect();
    assert!(frames[0] >= 107_892 && frames[0] < 107_892 + 30, "{frames:?}");
    assert!(frames.windows(2).all(|w| w[1] == w[0] + 1), "every frame in order: {frames:?}");
    assert!(objs.iter().any(|o| o["timecode"].as_str().is_some_and(|t| t.starts_with("01:00:00;"))));
    let tail = states(&objs);
    assert_eq!(tail[tail.len() - 2..], ["freewheel", "lost"], "{tail:?}");
}

#[test]
#[cfg_attr(windows, ignore = "ends the command with SIGINT through kill (Unix only)")]
fn the_bind_address_comes_from_the_environment_or_the_config_file_and_ctrl_c_ends_it() {
    for source in ["env", "config"] {
        let port = free_port();
        let mut cmd = osc_timecode("listen_sources");
        match source {
            "env" => {
                cmd.env("OSC_TIMECODE_LISTEN", format!("127.0.0.1:{port}"));
            }
            _ => {
                cmd.write_config(&format!("[client]\nlisten = \"127.0.0.1:{port}\"\n"));
            }
        }
        let mut child = KillOnDrop(cmd.args(["listen", "--json"]).spawn());
        // Bound where it was told: the port is taken now.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            assert!(std::time::Instant::now() < deadline, "{source}: listen never bound {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        // SIGINT, as Ctrl-C sends it.
        let pid = child.0.id().to_string();
        assert!(std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
        let status = child.0.wait().unwrap();
        assert_eq!(status.code(), Some(0), "{source}: Ctrl-C ends listen cleanly");
        let mut out = String::new();
        std::io::Read::read_to_string(child.0.stdout.as_mut().unwrap(), &mut out).unwrap();
        assert!(out.lines().next().is_some_and(|l| l.contains("\"waiting\"")), "{out}");
    }
}

/// In a terminal the readout is one line, redrawn in place. `script` (util-linux; Debian's
/// `bsdutils`) gives the command a pseudo-terminal: ignored by default, and failing with the
/// install command when run without it.
#[test]
#[ignore = "needs script: apt-get install bsdutils"]
fn in_a_terminal_one_line_is_redrawn_in_place() {
    assert!(
        std::process::Command::new("script").arg("--version").output().is_ok(),
        "script (util-linux) is not installed: this test needs it (apt-get install bsdutils)"
    );
    let port = free_port();
    let sender = play(port, steps(0..8, 250));
    let command = format!("{} listen --bind 127.0.0.1:{port} --duration 0.8", util::BIN.display());
    // Only for its scratch directory (an absent config file).
    let cmd = osc_timecode("listen_tty");
    let output = std::process::Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .env("OSC_TIMECODE_CONFIG", cmd.dir().join("none.toml"))
        .env_remove("OSC_TIMECODE_LISTEN")
        .output()
        .unwrap();
    sender.join().unwrap();
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    // Every update starts with a carriage return and clears the rest of the line; one newline
    // at the end (the terminal writes it as "\r\n").
    assert!(text.ends_with("\r\n"), "{text:?}");
    let updates: Vec<&str> = text.trim_end_matches("\r\n").split('\r').filter(|u| !u.is_empty()).collect();
    assert!(updates.len() >= 5, "{text:?}");
    assert!(updates.iter().all(|u| u.contains("\x1b[K")), "{text:?}");
    assert_eq!(text.matches('\n').count(), 1, "{text:?}");
    assert!(updates.iter().any(|u| u.starts_with("00:00:10:0") && u.contains("  locked  ")), "{text:?}");
}
