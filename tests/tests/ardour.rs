//! The plugin's debug VST3 in a real DAW: headless Ardour (`ardour7-lua`, dummy backend, real
//! time) inserts it on a track, sets its frame rate, saves and reloads the session, locates to
//! 01:00:00:00, rolls, plays a one-second loop range twice and stops, while a loopback receiver
//! takes every `/sync/timecode` packet. See `osc_timecode_tests::ardour` and
//! `tests/ardour/session.lua`.
//!
//! A third run records the plugin's MIDI out on the track (a Lua processor after the plugin) while
//! the test sends it cues over loopback; a fourth records its MTC there, read by mido. Two send
//! cues that move parameters (issue 19), a Cue Macro and, through a `param` mapping, the Output,
//! and read them back through Ardour's own controls from Lua. Two keep
//! its LTC (a Lua processor after it on the track logs the left channel with Ardour's transport
//! sample of each cycle), read by libltc, at 25 and 29.97 DF; one sends Art-Net to a loopback
//! receiver, read by artnet_protocol against the OSC stream of the same run.
//!
//! Ardour reports its session's timecode format to VST3 plugins (`ProcessContext::frameRate`,
//! in its own way: drop-frame without the pull-down flag, and never a pull-down flag for the
//! other rates; the vendored nice-plug reads it so). The 29.97 DF run's session agrees with the
//! plugin, and the plugin says nothing until the script switches the session to 29.97 non-drop
//! after the stop; the 25 fps run's session is at 30 fps, and the plugin warns in the host's log,
//! then says they agree again once the script switches the session to 25 fps.
//!
//! Every test here is `#[ignore = "needs ardour7-lua: ..."]`, so `cargo test` lists it as ignored;
//! run explicitly (`-- --ignored`, as `.ci/run` does, after installing Ardour), a test fails with
//! the install command when Ardour is missing.

use std::time::{Duration, Instant};

use osc_timecode_core::FrameRate;
use osc_timecode_core::protocol::{TimecodeMessage, system_time_from_timetag};
use osc_timecode_core::timecode::{Timecode, frame_at_sample, frame_start_nanos, frame_start_sample};
use osc_timecode_tests::ardour::{Ardour, MidiEvent, Options, ParamCue, Played, Playing, Session};
use osc_timecode_tests::cues::{CueId, CueSender, CueValue, timetag};
use osc_timecode_tests::expect::{assert_seq_consecutive, describe};
use osc_timecode_tests::receiver::Packet;
use osc_timecode_tests::transport;

/// The session's sample rate (the script creates it at 48 kHz).
const SAMPLE_RATE: u32 = 48_000;

/// What the plugin logs about the host's project frame rate (`plugin/src/network.rs`).
const RATE_DISAGREES: &str = "the host's project frame rate is";
/// ... and when that is over.
const RATE_AGREES_AGAIN: &str = "the host's project frame rate and Frame Rate agree again";

#[test]
#[ignore = "needs ardour7-lua: apt-get install --no-install-recommends ardour"]
fn ardour_plays_29_97_drop_frame() {
    let options = Options { project_rate: Some("TC2997DF"), project_rate_after: Some("TC2997"), ..Options::default() };
    let played = plays_in_ardour(FrameRate::FPS_29_97_DF, options);
    let reported: Vec<&str> = played.all("project_rate").iter().map(|v| v[0].as_str()).collect();
    assert_eq!(reported, ["5", "4"], "Ardour's session at TC2997DF (5), then TC2997 (4)");
    let stopped = played.log.lines().position(|l| l.starts_with("OSCTC stopped")).expect("the script stopped");
    let warned: Vec<(usize, &str)> =
        played.log.lines().enumerate().filter(|(_, l)| l.contains(RATE_DISAGREES)).collect();
    let [(at, line)] = warned[..] else {
        panic!("one warning, when the session left drop-frame:\n{}", played.log);
    };
    assert!(
        at > stopped && line.contains("is 30 fps or 29.97 fps but Frame Rate is 29.97 fps drop-frame"),
        "silent while the session agreed; then the warning names both rates: {line}\n{}",
        played.log
    );
}

#[test]
#[ignore = "needs ardour7-lua: apt-get install --no-install-recommends ardour"]
fn ardour_plays_25() {
    let options = Options { project_rate: Some("TC30"), project_rate_after: Some("TC25"), ..Options::default() };
    let played = plays_in_ardour(FrameRate::FPS_25, options);
    let reported: Vec<&str> = played.all("project_rate").iter().map(|v| v[0].as_str()).collect();
    assert_eq!(reported, ["8", "3"], "Ardour's session at TC30 (8), then TC25 (3)");
    let warned = played.log.lines().position(|l| l.contains(RATE_DISAGREES));
    let agreed = played.log.lines().position(|l| l.contains(RATE_AGREES_AGAIN));
    let (Some(warned), Some(agreed)) = (warned, agreed) else {
        panic!("the plugin must warn of Ardour's 30 fps, then say 25 agrees:\n{}", played.log);
    };
    let line = played.log.lines().nth(warned).unwrap_or_default();
    assert!(
        line.contains("WARN") && line.contains("is 30 fps or 29.97 fps but Frame Rate is 25 fps") && warned < agreed,
        "one warning naming both rates, before the agreement: {line}\n{}",
        played.log
    );
    assert_eq!(played.log.matches(RATE_DISAGREES).count(), 1, "warned once, not per block:\n{}", played.log);
}

/// Creates and plays a session at `rate` (3 s roll, two loops) and checks the stream.
fn plays_in_ardour(rate: FrameRate, options: Options) -> Played {
    let ardour = Ardour::require();
    let session = Session::create(&ardour, rate, options);
    let played = session.play(3, 2);
    check(&played, rate);
    played
}

/// Cues sent to the plugin while Ardour rolls come out as MIDI on the track, on frame starts
/// (the run's plugin quantises cues): an immediate cue on the next frame start, a cue timetagged
/// 40 % into a frame on the start of the frame after it; each note off 100 ms later.
#[test]
#[ignore = "needs ardour7-lua: apt-get install --no-install-recommends ardour"]
fn ardour_records_cues_as_midi_on_frame_starts() {
    let ardour = Ardour::require();
    let rate = FrameRate::FPS_25;
    let session = Session::create(
        &ardour,
        rate,
        Options { midi_log: true, quantise: true, project_rate: Some("TC25"), ..Options::default() },
    );
    let mut aimed = None;
    let played = session.play_while(4, 0, |playing| {
        let taken = half_a_second_into_the_roll(playing);
        let mut sender = CueSender::new(playing.cue_addr);
        let ack = sender.cue_acked("/cue/60", Some(CueValue::Int(100)), Some(CueId::Int(1)));
        assert_eq!(ack.status, "ok", "immediate cue: {ack:?}");

        let last = taken.last().expect("a packet");
        let (n, m) = (last.msg().frame, last.msg().frame + 5);
        let ahead = frame_start_nanos(m, rate) - frame_start_nanos(n, rate) + frame_start_nanos(1, rate) * 2 / 5;
        let at = system_time_from_timetag(last.timetag()) + Duration::from_nanos(ahead as u64);
        sender.cue_at("/cue/61", Some(CueValue::Int(90)), Some(CueId::Int(2)), timetag(at));
        let ack = sender.ack();
        assert_eq!(ack.status, "ok", "timetagged cue: {ack:?}");
        aimed = Some(m);
        taken
    });
    let log = &played.log;
    let aimed = aimed.expect("the cues were sent");
    let midi = played.midi();
    eprintln!("Ardour played the cues as {midi:?} (timetagged cue aimed 40 % into frame {aimed})");
    assert_eq!(played.number("midi_events"), 4, "MIDI out of the plugin in Ardour: {midi:?}\n{log}");
    let on = |key: u8| -> MidiEvent {
        *midi
            .iter()
            .find(|e| e.status == 0x90 && e.data1 == key)
            .unwrap_or_else(|| panic!("no note on {key}: {midi:?}"))
    };
    let off = |key: u8| -> MidiEvent {
        *midi
            .iter()
            .find(|e| e.status == 0x80 && e.data1 == key)
            .unwrap_or_else(|| panic!("no note off {key}: {midi:?}"))
    };
    let is_frame_start = |s: i64| frame_start_sample(frame_at_sample(s, SAMPLE_RATE, rate), SAMPLE_RATE, rate) == s;
    let located = played.number("located");

    let immediate = on(60);
    assert_eq!(immediate.data2, 100, "velocity");
    assert!(immediate.sample > located, "the immediate cue plays while rolling: {immediate:?}");
    assert!(is_frame_start(immediate.sample), "the immediate cue lands on a frame start: {immediate:?}");
    assert_eq!(off(60).sample, immediate.sample + 4_800, "note off 100 ms after the note");

    let timed = on(61);
    assert_eq!(timed.data2, 90, "velocity");
    assert_eq!(
        timed.sample,
        frame_start_sample(aimed + 1, SAMPLE_RATE, rate),
        "the timetagged cue (40 % into frame {aimed}) lands on the next frame start: {timed:?}"
    );
    assert_eq!(off(61).sample, timed.sample + 4_800, "note off 100 ms after the note");
    // The timecode stream carried the frame the cue landed on.
    assert!(
        played.packets.iter().any(|p| p.msg().playing && p.msg().frame == aimed + 1),
        "frame {} was sent as timecode",
        aimed + 1
    );
}

/// What the plugin sent while Ardour played, up to its 12th frame played (half a second into the
/// roll at 25 fps).
fn half_a_second_into_the_roll(playing: &Playing) -> Vec<Packet> {
    let mut taken = Vec::new();
    while taken.iter().filter(|p: &&Packet| p.msg().playing).count() < 12 {
        let mut got = playing.rx.collect(1, Duration::from_secs(60));
        assert!(!got.is_empty(), "Ardour sent no timecode within a minute");
        taken.append(&mut got);
    }
    taken
}

/// How long a test waits for the script to report that Ardour's control for a parameter took
/// a cue's value (the roll it watches lasts a few seconds).
const SEEN_WITHIN: Duration = Duration::from_millis(2500);

/// A `param` line of watched parameter `i` with value `want`.
fn param_is(i: usize, want: f64) -> impl Fn(&[String]) -> bool {
    move |v| matches!(v, [w, _, value] if *w == i.to_string() && value.parse::<f64>() == Ok(want))
}

/// Issue 19 in a real host: `/macro/1` cues sent while Ardour rolls move the plugin's "Cue Macro
/// 1" as Ardour itself sees it. The script reads Ardour's own control for the parameter (found by
/// name; the PluginInsert's AutomationControl, what its mixer strip and automation show) every
/// 5 ms while rolling: 0 from the roll's start until the first cue, then 0.5 (`/macro/1 0.5`),
/// then 1.0 (`/macro/1 127`), each only after its cue was acked, in that order and nothing else,
/// all while rolling, and 1.0 still after the stop.
///
/// Headless Ardour 7 offers no `IRunLoop` in the plugin's `initialize()` context (its
/// `HostApplication` answers no such interface; only a plugin window's frame has one) and runs
/// no GUI event loop: the wrapper's gesture task then runs on nice-plug's own event loop thread
/// (vendor/README.md), and Ardour takes `beginEdit`/`performEdit`/`endEdit` from there.
#[test]
#[ignore = "needs ardour7-lua: apt-get install --no-install-recommends ardour"]
fn ardour_sees_macro_cues_as_its_parameter_while_rolling() {
    let ardour = Ardour::require();
    let options = Options { watch: &["Cue Macro 1"], project_rate: Some("TC25"), ..Options::default() };
    let session = Session::create(&ardour, FrameRate::FPS_25, options);
    let sent = [(CueValue::Float(0.5), 0.5), (CueValue::Int(127), 1.0)];
    let mut seen = Vec::new();
    let played = session.play_while(5, 0, |playing| {
        let taken = half_a_second_into_the_roll(playing);
        let before = playing.wait_line("param", SEEN_WITHIN, |v| v.first().is_some_and(|w| w == "0"));
        let mut sender = CueSender::new(playing.cue_addr);
        for (value, want) in sent {
            let ack = sender.cue_acked("/macro/1", Some(value), None);
            let acked = Instant::now();
            let line = playing.wait_line("param", SEEN_WITHIN, param_is(0, want));
            seen.push((ack.status, before.is_some(), line.map(|_| acked.elapsed())));
        }
        taken
    });
    let log = &played.log;
    eprintln!("Ardour's control took /macro/1 (ack status, seen at the start, ack to seen): {seen:?}");
    for (status, _, _) in &seen {
        assert_eq!(status, "ok", "/macro/1 acked:\n{log}");
    }
    let values = played.param(0);
    let located = played.number("located");
    let rolled = played.number("rolled");
    assert_eq!(
        values.iter().map(|(_, v)| *v).collect::<Vec<_>>(),
        [0.0, 0.5, 1.0],
        "Cue Macro 1 as Ardour saw it while rolling (transport sample, value): {values:?}\n{log}"
    );
    assert!(
        located <= values[0].0 && values.windows(2).all(|w| w[0].0 <= w[1].0) && values[2].0 <= rolled,
        "in order, while rolling (from {located}; the roll ended at {rolled}): {values:?}"
    );
    assert!(seen.iter().all(|(_, _, took)| took.is_some()), "each value seen after its ack: {seen:?}\n{log}");
    assert_eq!(played.param_end(0), 1.0, "Cue Macro 1 after the stop:\n{log}");
}

/// The issue's `param` mapping in Ardour: `/show/stop`, mapped in the plugin's machine config
/// to `output` at 0, sent while Ardour rolls, turns the plugin's "Output" off as Ardour sees it
/// (its control, read by the script: on from the roll's start, then off), and the timecode
/// stream stops: nothing reaches the receiver once the change has had 200 ms to act, through
/// the rest of the roll, the stop and the parked second after it, and the last frame sent is at
/// most one block past the transport sample where Ardour's control read off.
#[test]
#[ignore = "needs ardour7-lua: apt-get install --no-install-recommends ardour"]
fn ardour_param_cue_turns_the_output_off_while_rolling() {
    const STOP: ParamCue = ParamCue { address: "/show/stop", param: "output", value: 0.0 };
    let ardour = Ardour::require();
    let rate = FrameRate::FPS_25;
    let options = Options { watch: &["Output"], param_cues: &[STOP], project_rate: Some("TC25"), ..Options::default() };
    let session = Session::create(&ardour, rate, options);
    let mut acted = None;
    let played = session.play_while(4, 0, |playing| {
        let mut taken = half_a_second_into_the_roll(playing);
        let ack = CueSender::new(playing.cue_addr).cue_acked(STOP.address, None, None);
        let acked = Instant::now();
        let off = playing.wait_line("param", SEEN_WITHIN, param_is(0, 0.0)).map(|_| acked.elapsed());
        if off.is_some() {
            // Frames already on their way when the audio thread took the change.
            std::thread::sleep(Duration::from_millis(200));
        }
        taken.extend(playing.rx.drain_now());
        acted = Some((ack, off, taken.len()));
        taken
    });
    let log = &played.log;
    let (ack, off, kept) = acted.expect("the cue was sent");
    assert_eq!(ack.status, "ok", "{} acked: {ack:?}\n{log}", STOP.address);
    let values = played.param(0);
    assert_eq!(
        values.iter().map(|(_, v)| *v).collect::<Vec<_>>(),
        [1.0, 0.0],
        "Output as Ardour saw it while rolling (transport sample, value): {values:?}\n{log}"
    );
    assert!(off.is_some(), "the script reported Output off while the test waited:\n{log}");
    assert_eq!(played.param_end(0), 0.0, "Output after the stop:\n{log}");
    let late: Vec<_> = played.packets[kept..].iter().map(|p| describe(&p.msg())).collect();
    assert!(late.is_empty(), "timecode after Output went off (and 200 ms):\n{}\n{log}", late.join("\n"));
    let last = played.packets.iter().rev().find(|p| p.msg().playing).expect("frames before the cue").msg();
    let block = played.number("block");
    let off_at = values[1].0;
    assert!(
        last.frame <= frame_at_sample(off_at + block, SAMPLE_RATE, rate),
        "the last frame sent, {}, is at most a block past Ardour's Output off at sample {off_at}",
        describe(&last)
    );
    eprintln!(
        "Output off in Ardour at sample {off_at}, {off:?} after the ack; the last frame sent {}; {} packets",
        describe(&last),
        played.packets.len()
    );
}

/// Everything the issue asks of a run, against the playhead positions Ardour reported.
fn check(played: &Played, rate: FrameRate) {
    let frame = |sample: i64| frame_at_sample(sample, SAMPLE_RATE, rate);
    let log = &played.log;
    let msgs: Vec<TimecodeMessage> = played.packets.iter().map(|p| p.msg()).collect();
    let dump = || msgs.iter().map(describe).collect::<Vec<_>>().join("\n");
    assert!(!msgs.is_empty(), "nothing arrived from the plugin in Ardour:\n{log}");

    // The parameter survived save → reload, and every packet carries that rate.
    assert_eq!(played.text("rate_param", 0), rate.index().to_string(), "Frame Rate after reloading:\n{log}");
    for m in &msgs {
        assert_eq!(m.rate(), rate, "a packet at the wrong rate: {}", describe(m));
    }
    // One sender, no packet lost: sequence numbers consecutive.
    assert_seq_consecutive(&msgs, "Ardour");

    // Located to 01:00:00:00 and parked there: the plugin reports Ardour's playhead.
    let located = played.number("located");
    assert_eq!(located, 3600 * i64::from(SAMPLE_RATE), "Ardour's playhead after the locate:\n{log}");
    let f_located = frame(located);
    let parked = msgs
        .iter()
        .position(|m| !m.playing && m.frame == f_located)
        .unwrap_or_else(|| panic!("no parked packet at frame {f_located} after the locate:\n{}", dump()));
    let label = Timecode::from_frame(f_located, rate).label();
    assert!(label.as_str().starts_with("01:00:00") && label.as_str().ends_with("00"), "label at 1 h: {label}");
    assert!(msgs[parked].jump, "the locate is flagged: {}", describe(&msgs[parked]));

    // Rolling: the first frame is the playhead's, then every frame in order until the next
    // discontinuity, which must be flagged.
    let first_playing =
        parked + msgs[parked..].iter().position(|m| m.playing).unwrap_or_else(|| panic!("never played:\n{}", dump()));
    assert_eq!(msgs[first_playing].frame, f_located, "first frame after roll: {}", describe(&msgs[first_playing]));
    assert_eq!(msgs[first_playing].timecode.label(), label);
    let mut loops = Vec::new();
    for w in msgs[first_playing..].windows(2) {
        let (a, b) = (&w[0], &w[1]);
        if !b.playing {
            continue;
        }
        if !a.playing {
            continue;
        }
        if b.looped {
            loops.push((*a, *b));
        } else if !b.jump {
            assert_eq!(b.frame, a.frame + 1, "a gap or duplicate while rolling:\n{}\n{}", describe(a), describe(b));
        }
        assert!(b.frame > a.frame || b.jump, "an unflagged jump back:\n{}\n{}", describe(a), describe(b));
    }
    // The first roll ended near where Ardour said it was (read asynchronously from Lua).
    let rolled = frame(played.number("rolled"));
    let last_of_first_run = msgs[first_playing..]
        .iter()
        .take_while(|m| m.playing)
        .last()
        .unwrap_or_else(|| panic!("first roll empty:\n{}", dump()));
    assert!(
        (rolled - 1..=rolled + 3).contains(&last_of_first_run.frame),
        "first roll ended at {} but Ardour's playhead said frame {rolled}",
        describe(last_of_first_run)
    );

    // The loop: Ardour relocates to the loop start, then wraps at the loop end; each wrap is
    // flagged as a loop back to the loop start's frame, from the last frame before the end.
    let loop_start = played.text("loop", 0).parse::<i64>().expect("loop start");
    let loop_end = played.text("loop", 1).parse::<i64>().expect("loop end");
    assert!(!loops.is_empty(), "no flagged loop in Ardour's loop playback:\n{}", dump());
    for (before, wrap) in &loops {
        assert_eq!(wrap.frame, frame(loop_start), "loop wrap lands on the loop start: {}", describe(wrap));
        assert_eq!(
            before.frame,
            frame(loop_end - 1),
            "loop wrap comes from the loop's last frame: {}",
            describe(before)
        );
        assert!(wrap.jump, "a loop wrap is also a jump: {}", describe(wrap));
    }

    eprintln!(
        "Ardour at {}: {} packets, first frame {}, {} loop wraps, stopped at {}",
        rate.name(),
        msgs.len(),
        describe(&msgs[first_playing]),
        loops.len(),
        played.number("stopped")
    );

    // Stopped: the last packets are parked at Ardour's final playhead.
    let stopped = played.number("stopped");
    assert_eq!(played.text("stopped", 1), "false", "Ardour still rolling after stop:\n{log}");
    let last = msgs.last().expect("packets");
    assert!(!last.playing, "the stop is reported: last packet {}", describe(last));
    assert_eq!(last.frame, frame(stopped), "parked at Ardour's playhead after stop: {}", describe(last));
    let stop_at = msgs.iter().rposition(|m| m.playing).expect("played") + 1;
    assert!(msgs[stop_at..].iter().all(|m| !m.playing && m.frame == frame(stopped)), "after stop:\n{}", dump());
}

#[path = "mtc/mod.rs"]
mod mtc;

/// MTC from the plugin (`[plugin.mtc] enabled` in its config) as Ardour plays it on the track:
/// real quarter frames `F1 dd` (2 bytes: the plugin sends them as `DataEvent`s in Ardour, whose
/// VST3 host would turn `kCtrlQuarterFrame` into `B0 84 dd`) and 10-byte full frames, read by
/// mido (`mtc/mod.rs`): each stretch of play from its full frame on has exactly the quarter frames
/// due at their samples with the frames' labels; full frames at the locate (parked), the start of
/// the roll, each loop pass's start and the stop.
#[test]
#[ignore = "needs ardour7-lua and mido: apt-get install --no-install-recommends ardour; pip install mido==1.3.3"]
fn ardour_plays_mtc_as_real_quarter_frames() {
    let ardour = Ardour::require();
    mtc::require_mido();
    let rate = FrameRate::FPS_25;
    let options = Options { midi_log: true, mtc: true, project_rate: Some("TC25"), ..Options::default() };
    let session = Session::create(&ardour, rate, options);
    let played = session.play(3, 2);
    let log = &played.log;
    let midi = played.midi();
    assert!(played.number("midi_events") < 4096, "the MIDI log kept every event:\n{log}");
    for e in &midi {
        let real = matches!(e.data(), [0xf1, d] if *d < 0x80 && e.size == 2)
            || matches!(e.data(), [0xf0, 0x7f, 0x7f, 0x01, 0x01, .., 0xf7] if e.size == 10);
        assert!(real, "not an MTC quarter or full frame: {e:?}\n{log}");
    }
    // Stretches: a full frame, then the quarter frames up to the next full frame.
    let mut segments: Vec<mtc::Segment> = Vec::new();
    for e in &midi {
        if e.status == 0xf0 {
            segments.push(mtc::Segment { begin: e.sample, end: e.sample, messages: Vec::new() });
        }
        let segment = segments.last_mut().unwrap_or_else(|| panic!("a quarter frame before any full frame\n{log}"));
        if e.status == 0xf1 {
            segment.end = e.sample + 1;
        }
        segment.messages.push((e.sample, e.data().to_vec()));
    }
    let timing = mtc::MtcTiming { sample_rate: SAMPLE_RATE, rate, offset_frames: 0, code: 1 };
    let sr = i64::from(SAMPLE_RATE);
    let (roll, loop_start) = (3600 * sr, (3600 + 2) * sr);
    let mut plays = Vec::new();
    for (i, segment) in segments.iter().enumerate() {
        let checked = mtc::check_segment(timing, segment, &format!("Ardour MTC stretch {i} from {}", segment.begin));
        assert_eq!(checked.full_frames, [segment.begin]);
        if checked.quarters > 0 {
            plays.push((segment.begin, checked.quarters, checked.sequences));
        }
    }
    eprintln!("Ardour played MTC: {} events, stretches of play (begin, quarters, sequences) {plays:?}", midi.len());
    let parked: Vec<i64> = segments.iter().filter(|s| s.end == s.begin).map(|s| s.begin).collect();
    assert!(parked.contains(&roll), "a full frame at the locate to 01:00:00:00 (parked): {parked:?}\n{log}");
    let stopped = played.number("stopped");
    assert_eq!(parked.last(), Some(&stopped), "the last full frame is the stop's: {parked:?}\n{log}");
    let from_roll = plays.iter().find(|p| p.0 == roll).unwrap_or_else(|| panic!("no play from {roll}: {plays:?}"));
    assert!(from_roll.1 >= 4 * 25 * 2, "quarter frames of the 3 s roll: {from_roll:?}");
    let loops = plays.iter().filter(|p| p.0 == loop_start).count();
    assert!(loops >= 2, "each loop pass starts with a full frame at the loop start: {plays:?}\n{log}");
}

#[path = "host/ltc_words.rs"]
mod ltc_words;

#[path = "host/artnet_read.rs"]
mod artnet_read;

/// What Ardour played, as the transport model's history (`ltc_words` reads it): the audio log's
/// cycles, each with its length in the captured audio. A rolling cycle that starts where the last
/// rolling one ended continues it; one that starts elsewhere after a rolling one is a loop wrap
/// if it starts on the loop start, else a locate; one after a stopped cycle is a start. A
/// stopped cycle is parked at its position.
fn heard(cycles: &[osc_timecode_tests::ardour::Cycle], loop_start: i64) -> Vec<(transport::Played, i64)> {
    use transport::{Played as P, SpanStart};
    let mut history: Vec<(P, i64)> = Vec::new();
    for c in cycles {
        if !c.rolling {
            history.push((P::Parked(c.sample), c.len));
            continue;
        }
        let (start, end) = (c.sample, c.sample + c.len);
        let how = match history.last_mut() {
            Some((P::Span { end: prev_end, .. }, len)) if *prev_end == start => {
                *prev_end = end;
                *len += c.len;
                continue;
            }
            Some((P::Span { .. }, _)) if start == loop_start => SpanStart::Loop,
            Some((P::Span { .. }, _)) => SpanStart::Locate,
            _ => SpanStart::Start,
        };
        history.push((P::Span { start, end, how }, c.len));
    }
    history
}

/// LTC from the plugin (`[plugin.ltc]` on the left channel) as Ardour rolls, kept by a Lua
/// processor after the plugin (`tests/ardour/audio_log.lua`) with each cycle's transport sample,
/// and read by libltc (`host/ltc_words.rs`): from the roll at 01:00:00:00 through the loop passes
/// to the stop, every word complete in the audio, in order, with the label and DF flag of the
/// frame Ardour's transport sample puts there, starting on that frame's first sample (libltc's 0
/// to 2 samples), at the set level; silence once stopped.
fn ltc_in_ardour(rate: FrameRate, project_rate: &'static str) {
    use ltc_words::{LEVEL_DBFS, assert_words, expected_words, libltc};
    use osc_timecode_tests::expect::Timing;
    use transport::{Played as P, SpanStart};

    let ardour = Ardour::require();
    libltc::require_libltc();
    let options = Options { ltc_level_dbfs: Some(LEVEL_DBFS), project_rate: Some(project_rate), ..Options::default() };
    let session = Session::create(&ardour, rate, options);
    let played = session.play(3, 2);
    let log = &played.log;
    let cycles = played.cycles();
    let what = format!("LTC at {} in Ardour", rate.name());
    assert_eq!(
        cycles.iter().map(|c| c.len).sum::<i64>(),
        played.audio.len() as i64,
        "{what}: the audio log's cycles and samples\n{log}"
    );
    let located = played.number("located");
    assert_eq!(
        cycles.first().map(|c| (c.sample, c.rolling)),
        Some((located, true)),
        "{what}: kept from the roll\n{log}"
    );
    let loop_start = played.text("loop", 0).parse::<i64>().expect("loop start");
    let history = heard(&cycles, loop_start);
    let wraps = history.iter().filter(|(p, _)| matches!(p, P::Span { how: SpanStart::Loop, .. })).count();
    let (want, breaks) = expected_words(&history, Timing::new(SAMPLE_RATE, rate), false);
    eprintln!(
        "{what}: {} cycles ({} samples), {wraps} loop passes, {} words expected; history {history:?}",
        cycles.len(),
        played.audio.len(),
        want.len()
    );
    assert!(wraps >= 2, "{what}: Ardour played the loop range twice: {history:?}\n{log}");
    let decoded = assert_words(&played.audio, SAMPLE_RATE, rate, (&want, &breaks), &what);
    // The roll's first words; a word of the loop once on the way in the roll and once per pass.
    let label = |sample: i64| Timecode::from_frame(frame_at_sample(sample, SAMPLE_RATE, rate), rate).label();
    let read = |sample: i64| decoded.iter().filter(|d| d.label == label(sample).as_str()).count();
    let second = located + frame_start_sample(1, SAMPLE_RATE, rate);
    let first_read = decoded.first().map(|d| d.label.as_str());
    assert!(
        first_read == Some(label(located).as_str()) || first_read == Some(label(second).as_str()),
        "{what}: libltc's first word is the roll's first or second: {first_read:?}"
    );
    // A loop start off the frame grid (3602 s at 29.97) cuts a word; the fifth whole one after it
    // is well clear of the break.
    let in_loop = frame_start_sample(frame_at_sample(loop_start - 1, SAMPLE_RATE, rate) + 6, SAMPLE_RATE, rate);
    assert!(read(in_loop) > wraps, "{what}: the loop's word {} in each pass", label(in_loop));
    // Stopped: silence from the first stopped cycle after the roll on.
    let rolled: i64 = cycles.iter().take_while(|c| c.rolling).map(|c| c.len).sum();
    let last_rolling = cycles.iter().rposition(|c| c.rolling).expect("rolled");
    let stopped_at: i64 = cycles[..=last_rolling].iter().map(|c| c.len).sum();
    assert!(rolled > 2 * i64::from(SAMPLE_RATE), "{what}: rolled {rolled} samples before the loop");
    let after = &played.audio[stopped_at as usize..];
    assert!(after.len() > SAMPLE_RATE as usize / 2, "{what}: half a second kept after the stop ({})", after.len());
    assert!(after.iter().all(|s| *s == 0.0), "{what}: silence once stopped");
}

#[test]
#[ignore = "needs ardour7-lua and libltc: apt-get install --no-install-recommends ardour libltc11"]
fn ardour_plays_ltc_at_25_read_by_libltc() {
    ltc_in_ardour(FrameRate::FPS_25, "TC25");
}

#[test]
#[ignore = "needs ardour7-lua and libltc: apt-get install --no-install-recommends ardour libltc11"]
fn ardour_plays_ltc_at_29_97_drop_frame_read_by_libltc() {
    ltc_in_ardour(FrameRate::FPS_29_97_DF, "TC2997DF");
}

/// Art-Net from the plugin (`[plugin.artnet]` to a loopback receiver) while Ardour plays the
/// usual session (the OSC stream checked as in the other runs): `artnet_protocol` reads every
/// packet, stream 0, Type 25 fps, one per OSC packet with the same label in order (the locate,
/// the roll, the loop wraps, the parked keep-alive), none before its frame is heard (its OSC
/// timetag) while rolling.
#[test]
#[ignore = "needs ardour7-lua: apt-get install --no-install-recommends ardour"]
fn ardour_sends_artnet_with_the_osc_streams_labels() {
    use artnet_read::{label, read};

    let options = Options { artnet: true, project_rate: Some("TC25"), ..Options::default() };
    let played = plays_in_ardour(FrameRate::FPS_25, options);
    let log = &played.log;
    let osc: Vec<_> = played.packets.iter().map(|p| label(p.msg().timecode)).collect();
    let art: Vec<_> = played.artnet.iter().map(|p| read(p).0).collect();
    eprintln!("Art-Net in Ardour: {} packets, OSC {}", art.len(), osc.len());
    // The last keep-alive's packet may still wait for its heard time when the session closes:
    // such a frame is sent on neither (plugin/src/network/artnet.rs), but its OSC bundle left.
    assert!(
        art.len() == osc.len() || art.len() + 1 == osc.len(),
        "one Art-Net packet per OSC packet: {} and {}\n{log}",
        art.len(),
        osc.len()
    );
    assert_eq!(art, osc[..art.len()], "Art-Net labels against the OSC stream's");
    let loop_start = label(Timecode::from_frame(
        frame_at_sample(played.number("loop"), SAMPLE_RATE, FrameRate::FPS_25),
        FrameRate::FPS_25,
    ));
    assert!(art.iter().filter(|l| **l == loop_start).count() >= 3, "the loop passes reached Art-Net");
    for (i, (a, o)) in played.artnet.iter().zip(&played.packets).enumerate() {
        let (l, stream, kind) = read(a);
        assert_eq!((stream, kind), (0, artnet_protocol::FrameType::EBU), "packet {i}");
        let heard = system_time_from_timetag(o.timetag());
        assert!(
            !o.msg().playing || a.wall + Duration::from_micros(100) >= heard,
            "packet {i} ({l:?}) arrived {:?} before its frame was heard",
            heard.duration_since(a.wall).unwrap_or_default()
        );
    }
}
