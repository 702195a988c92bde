//! `osc-timecode cue` and `trigger` through the real binary, against a scripted master on
//! loopback: a UDP socket in the test that decodes what arrives with rosc (not with the code
//! under test) and answers as told. Network safety: everything binds and sends to 127.0.0.1.

mod util;

use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use rosc::{OscMessage, OscPacket, OscType};
use util::{KillOnDrop, free_port, osc_timecode};

/// How the scripted master answers each arriving cue, in order; after the script, silence.
#[derive(Debug, Clone)]
enum Answer {
    /// Say nothing (a lost packet, as far as the sender knows).
    Ignore,
    /// `/ack ADDRESS ID STATUS`, echoing the cue's address and ID.
    Ack(&'static str),
    /// An ack for some other cue first, then the right one with this status.
    WrongThenAck(&'static str),
}

/// A master on a free loopback port that records every message and answers per its script.
struct Master {
    addr: SocketAddr,
    thread: Option<JoinHandle<Vec<OscMessage>>>,
}

impl Master {
    fn start(script: Vec<Answer>) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(1500))).unwrap();
        let addr = socket.local_addr().unwrap();
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            ready_tx.send(()).unwrap();
            let mut got = Vec::new();
            let mut script = script.into_iter();
            let mut buf = [0u8; 65536];
            // Until the sender has been quiet for the read timeout.
            while let Ok((n, from)) = socket.recv_from(&mut buf) {
                let OscPacket::Message(msg) = rosc::decoder::decode_udp(&buf[..n]).unwrap().1 else {
                    panic!("the client sends bare messages")
                };
                let id = msg.args.last().cloned().unwrap();
                let ack = |status: &str, addr: &str| {
                    let m = OscMessage {
                        addr: "/ack".into(),
                        args: vec![OscType::String(addr.into()), id.clone(), OscType::String(status.into())],
                    };
                    socket.send_to(&rosc::encoder::encode(&OscPacket::Message(m)).unwrap(), from).unwrap();
                };
                match script.next() {
                    None | Some(Answer::Ignore) => {}
                    Some(Answer::Ack(status)) => ack(status, &msg.addr),
                    Some(Answer::WrongThenAck(status)) => {
                        ack("ok", "/cue/someone-else");
                        ack(status, &msg.addr);
                    }
                }
                got.push(msg);
            }
            got
        });
        ready_rx.recv().unwrap();
        Self { addr, thread: Some(thread) }
    }

    /// Everything the master received.
    fn received(mut self) -> Vec<OscMessage> {
        self.thread.take().unwrap().join().expect("master thread")
    }
}

#[test]
fn an_acknowledged_cue_exits_zero_and_says_so() {
    let master = Master::start(vec![Answer::Ack("ok")]);
    let out = osc_timecode("cue_ok")
        .args(["cue", "12", "100", "--id", "7", "--master"])
        .args([master.addr.to_string()])
        .stdout();
    assert_eq!(out, "ok /cue/12 id 7\n");
    let got = master.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].addr, "/cue/12");
    assert_eq!(got[0].args, vec![OscType::Int(100), OscType::Long(7)]);
}

#[test]
fn triggers_floats_tokens_and_defaults() {
    let master = Master::start(vec![Answer::Ack("ok"), Answer::Ack("ok")]);
    let addr = master.addr.to_string();
    osc_timecode("trigger_float")
        .args(["trigger", "7", "0.5", "--token", "s3cret", "--id", "1", "--master", &addr])
        .stdout();
    // From the environment and with no value: nil in VALUE's place, so the ID stays last.
    osc_timecode("cue_env")
        .env("OSC_TIMECODE_MASTER", &addr)
        .env("OSC_TIMECODE_TOKEN", "t2")
        .args(["cue", "intro", "--id", "2"])
        .stdout();
    let got = master.received();
    assert_eq!(got[0].addr, "/trigger/7");
    assert_eq!(got[0].args, vec![OscType::String("s3cret".into()), OscType::Float(0.5), OscType::Long(1)]);
    assert_eq!(got[1].addr, "/cue/intro");
    assert_eq!(got[1].args, vec![OscType::String("t2".into()), OscType::Nil, OscType::Long(2)]);
}

#[test]
fn the_config_file_names_the_master() {
    let master = Master::start(vec![Answer::Ack("ok")]);
    let mut cmd = osc_timecode("cue_config");
    cmd.write_config(&format!("[client]\nmaster = \"{}\"\ntoken = \"from-file\"\n", master.addr));
    cmd.args(["cue", "3", "--id", "3"]).stdout();
    let got = master.received();
    assert_eq!(got[0].args[0], OscType::String("from-file".into()));
}

#[test]
fn lost_packets_are_retried_with_the_same_id() {
    // Two tries lost, the third acknowledged as a duplicate (an earlier one had got through).
    let master = Master::start(vec![Answer::Ignore, Answer::Ignore, Answer::Ack("duplicate")]);
    let out = osc_timecode("cue_retry")
        .args(["cue", "5", "--id", "99", "--timeout-ms", "100", "--master", &master.addr.to_string()])
        .stdout();
    assert_eq!(out, "duplicate /cue/5 id 99\n");
    let got = master.received();
    assert_eq!(got.len(), 3, "three tries");
    assert!(got.iter().all(|m| m.args == got[0].args), "same ID every time");
}

#[test]
fn acks_for_other_cues_are_ignored() {
    let master = Master::start(vec![Answer::WrongThenAck("ok")]);
    let out =
        osc_timecode("cue_wrong_ack").args(["cue", "6", "--id", "4", "--master", &master.addr.to_string()]).stdout();
    assert_eq!(out, "ok /cue/6 id 4\n");
    master.received();
}

#[test]
fn a_refusal_is_one_line_with_the_reason() {
    let master = Master::start(vec![Answer::Ack("unmapped")]);
    let line = osc_timecode("cue_refused").args(["cue", "nope", "--master", &master.addr.to_string()]).not_done();
    assert!(line.contains("refused /cue/nope: unmapped (no mapped address matches)"), "{line}");
    assert_eq!(master.received().len(), 1, "a refusal is not retried");
}

#[test]
fn silence_and_nothing_listening_are_clear_errors() {
    let master = Master::start(vec![]);
    let line = osc_timecode("cue_silence")
        .args(["cue", "1", "--retries", "2", "--timeout-ms", "50", "--master", &master.addr.to_string()])
        .not_done();
    assert!(line.starts_with(&format!("no /ack from {} for /cue/1 after 3 tries", master.addr)), "{line}");
    assert_eq!(master.received().len(), 3);
    // A port nobody listens on: the OS says so (ICMP port unreachable on loopback).
    let closed = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let line = osc_timecode("cue_closed")
        .args(["cue", "1", "--retries", "1", "--timeout-ms", "50", "--master", &closed.to_string()])
        .not_done();
    assert!(line.contains(&format!("nothing is listening for cues at {closed}")), "{line}");
}

#[test]
fn bad_input_is_one_line() {
    for (args, needle) in [
        (vec!["cue", "1", "128"], "must be an integer 0-127 or a number 0.0-1.0"),
        (vec!["cue", "1", "1.5"], "must be an integer 0-127 or a number 0.0-1.0"),
        (vec!["cue", "a/b"], "must be one non-empty part"),
        (vec!["cue", "[1"], "not valid in an OSC address"),
        (vec!["cue", "1", "--master", "localhost"], "invalid socket address"),
        (vec!["trigger"], "NAME"),
    ] {
        let line = osc_timecode("cue_bad").args(&args).fails();
        assert!(line.contains(needle), "{args:?}: {line}");
    }
}

#[test]
fn at_sends_the_cue_timetagged_for_that_frame_of_the_masters_timeline() {
    let (timecode, control) = (free_port(), free_port());
    let mut serve = KillOnDrop(
        osc_timecode("cue_at_serve")
            .args(["serve", "--rate", "25", "--start", "01:00:00:00"])
            .args(["--to", &format!("127.0.0.1:{timecode}"), "--listen", &format!("127.0.0.1:{control}")])
            .spawn(),
    );
    let from = format!("127.0.0.1:{timecode}");
    let master = format!("127.0.0.1:{control}");
    let out = osc_timecode("cue_at")
        .args(["cue", "5", "--id", "1", "--at", "01:00:03:00", "--timecode-from", &from, "--master", &master])
        .stdout();
    assert_eq!(out, "ok /cue/5 id 1 at 01:00:03:00\n");
    // A time already passed is refused before anything is sent.
    let line = osc_timecode("cue_at_past")
        .args(["cue", "5", "--at", "01:00:00:00", "--timecode-from", &from, "--master", &master])
        .not_done();
    assert!(line.starts_with("--at 01:00:00:00 has passed: the master is at 01:00:0"), "{line}");
    let line = osc_timecode("cue_at_bad")
        .args(["cue", "5", "--at", "01:00:00:25", "--timecode-from", &from, "--master", &master])
        .fails();
    assert!(line.contains("is not a timecode at the master's rate 25"), "{line}");
    // Serve saw the cue due exactly at 01:00:03:00 on its own timeline.
    let _ = serve.0.kill();
    let _ = serve.0.wait();
    let mut printed = String::new();
    std::io::Read::read_to_string(serve.0.stdout.as_mut().unwrap(), &mut printed).unwrap();
    let line = printed.lines().find(|l| l.starts_with("cue /cue/5")).unwrap_or_else(|| panic!("{printed}"));
    assert!(line.contains("due 01:00:03:00"), "{line}");
}

#[test]
fn at_without_timecode_is_one_line() {
    let line = osc_timecode("cue_at_none")
        .args(["cue", "5", "--at", "01:00:03:00", "--timecode-from", &format!("127.0.0.1:{}", free_port())])
        .not_done();
    assert!(line.starts_with("no timecode to lock to on 127.0.0.1:"), "{line}");
}
