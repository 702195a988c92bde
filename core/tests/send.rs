//! The send policy, rule by rule: host blocks and settings in, the frames reported and which of
//! them are queued out. Every case runs under the counting allocator and must not allocate
//! (the policy runs on the audio thread).
//!
//! Frames are written `"<frame> <flags>"`: `p` playing, `j` jump, `q` queued (`-` for none);
//! `none` is a block without frames. Block facts follow: `@<Hz>` when the clock's sample rate
//! is not 48 kHz, `refused` for an unusable host sample rate, `no position`, `paced`.

use osc_timecode_core::FrameRate;
use osc_timecode_core::send::{HostBlock, PlannedFrame, Render, SendPolicy, SendSettings};

mod counting;

use counting::count_allocs;

/// 25 fps at 48 kHz: a frame every 1920 samples, so a block of 1920 holds one frame start.
const SR: u32 = 48_000;
const FRAME: i64 = 1920;

/// Output on, "Send While Stopped" off, 25 fps, no offset.
const ON: SendSettings = SendSettings { rate: FrameRate::FPS_25, offset_frames: 0, output: true, send_stopped: false };
const OFF: SendSettings = SendSettings { output: false, ..ON };
const SEND_STOPPED: SendSettings = SendSettings { send_stopped: true, ..ON };

/// A playing block of one frame's length at frame `frame`.
fn play(frame: i64) -> HostBlock {
    HostBlock { sample_rate: f64::from(SR), playing: true, position: Some(frame * FRAME), loop_range: None, len: 1920 }
}

/// A stopped block at frame `frame`.
fn stop(frame: i64) -> HostBlock {
    HostBlock { playing: false, ..play(frame) }
}

/// What one block reported, kept without allocating.
#[derive(Debug, Clone, Copy, Default)]
struct Seen {
    frames: [Option<PlannedFrame>; 8],
    sample_rate: u32,
    has_position: bool,
    refused: bool,
    paced: bool,
}

impl Seen {
    fn show(&self) -> String {
        let mut parts: Vec<String> = self
            .frames
            .iter()
            .flatten()
            .map(|f| {
                let flags: String = [(f.event.playing, 'p'), (f.event.jump, 'j'), (f.queue, 'q')]
                    .iter()
                    .filter_map(|&(on, c)| on.then_some(c))
                    .collect();
                format!("{} {}", f.event.frame, if flags.is_empty() { "-".to_owned() } else { flags })
            })
            .collect();
        if parts.is_empty() {
            parts.push("none".into());
        }
        if self.sample_rate != SR {
            parts.push(format!("@{}", self.sample_rate));
        }
        if self.refused {
            parts.push("refused".into());
        } else if !self.has_position {
            parts.push("no position".into());
        }
        if self.paced {
            parts.push("paced".into());
        }
        parts.join(", ")
    }
}

/// Runs `rows` through `policy` under the counting allocator; returns what each block reported.
fn run(policy: &mut SendPolicy, rows: &[(SendSettings, HostBlock)]) -> Vec<String> {
    let mut seen = [Seen::default(); 16];
    assert!(rows.len() <= seen.len());
    let allocs = count_allocs(|| {
        for (&(settings, host), seen) in rows.iter().zip(seen.iter_mut()) {
            let block = policy.begin_block(settings, host);
            seen.sample_rate = block.sample_rate();
            seen.has_position = block.has_position();
            seen.refused = block.sample_rate_refused();
            seen.paced = block.paced();
            let mut n: usize = 0;
            let last = block.frames(|frame| {
                seen.frames[n] = Some(frame);
                n += 1;
            });
            assert_eq!(last, n.checked_sub(1).and_then(|i| seen.frames[i]).map(|f| f.event));
        }
    });
    assert_eq!(allocs, 0, "the send policy allocated {allocs} times");
    seen[..rows.len()].iter().map(Seen::show).collect()
}

/// A table: a render mode, then blocks with what each must report.
fn check(name: &str, render: Render, rows: &[(SendSettings, HostBlock, &str)]) {
    let mut policy = SendPolicy::new(SR, rows[0].0, render);
    let inputs: Vec<(SendSettings, HostBlock)> = rows.iter().map(|&(s, h, _)| (s, h)).collect();
    let expected: Vec<&str> = rows.iter().map(|r| r.2).collect();
    assert_eq!(run(&mut policy, &inputs), expected, "{name}");
}

#[test]
fn playing_frames_are_queued_while_the_output_is_on() {
    check(
        "playing",
        Render::Realtime,
        &[(ON, play(0), "0 pjq"), (ON, play(1), "1 pq"), (ON, play(2), "2 pq"), (ON, play(10), "10 pjq")],
    );
}

#[test]
fn stopped_frames_are_queued_with_send_while_stopped_on() {
    check(
        "send while stopped",
        Render::Realtime,
        &[
            (SEND_STOPPED, stop(0), "0 jq"),
            // Unchanged: the keep-alive is the network thread's.
            (SEND_STOPPED, stop(0), "none"),
            (SEND_STOPPED, stop(5), "5 jq"),
            (SEND_STOPPED, play(5), "5 pq"),
            (SEND_STOPPED, stop(6), "6 q"),
        ],
    );
}

#[test]
fn without_send_while_stopped_only_the_moment_of_stopping_is_queued() {
    check(
        "never played",
        Render::Realtime,
        &[(ON, stop(0), "0 j"), (ON, stop(5), "5 j"), (ON, play(5), "5 pq"), (ON, play(6), "6 pq")],
    );
    check(
        "stop after play",
        Render::Realtime,
        &[
            (ON, play(0), "0 pjq"),
            (ON, play(1), "1 pq"),
            (ON, stop(2), "2 q"),
            // A locate while stopped is not sent.
            (ON, stop(5), "5 j"),
            (ON, play(5), "5 pq"),
            (ON, stop(6), "6 q"),
        ],
    );
}

#[test]
fn output_off_reports_frames_but_queues_none_and_sending_resumes_with_a_jump() {
    check(
        "output off and on",
        Render::Realtime,
        &[
            (OFF, play(0), "0 pj"),
            (OFF, play(1), "1 p"),
            (ON, play(2), "2 pjq"),
            (ON, play(3), "3 pq"),
            (OFF, play(4), "4 p"),
            // Stopping while off: the stop owed since frame 3 is sent once the output is on again.
            (OFF, stop(5), "5 -"),
            (ON, stop(5), "5 jq"),
            (ON, stop(8), "8 j"),
        ],
    );
    check(
        "off as the transport stops",
        Render::Realtime,
        &[(ON, play(0), "0 pjq"), (OFF, stop(1), "1 -"), (ON, stop(1), "1 jq"), (ON, stop(3), "3 j")],
    );
}

#[test]
fn offline_silent_queues_nothing_and_offline_paced_queues_paced() {
    check(
        "silent",
        Render::OfflineSilent,
        &[(ON, play(0), "0 pj"), (ON, play(1), "1 p"), (SEND_STOPPED, stop(2), "2 -")],
    );
    check(
        "paced",
        Render::OfflinePaced,
        &[(ON, play(0), "0 pjq, paced"), (ON, play(1), "1 pq, paced"), (ON, stop(2), "2 q, paced")],
    );
}

#[test]
fn a_host_sample_rate_change_rebuilds_the_clock_as_a_discontinuity() {
    // At 96 kHz a frame is 3840 samples.
    let at_96k = |frame: i64| HostBlock { sample_rate: 96_000.0, position: Some(frame * 3840), len: 3840, ..play(0) };
    check(
        "48 → 96 kHz → 48 kHz",
        Render::Realtime,
        &[
            (ON, play(0), "0 pjq"),
            (ON, at_96k(1), "1 pjq, @96000"),
            (ON, at_96k(2), "2 pq, @96000"),
            // Rounded to whole Hz: 96 kHz still.
            (ON, HostBlock { sample_rate: 96_000.4, ..at_96k(3) }, "3 pq, @96000"),
            (ON, play(4), "4 pjq"),
        ],
    );
}

#[test]
fn an_unusable_host_sample_rate_gives_the_block_no_position_and_keeps_the_clock() {
    let mut rows = vec![(ON, play(0), "0 pjq")];
    for hz in [0.0, -48_000.0, 7_999.0, 1_536_001.0, f64::NAN, f64::INFINITY] {
        rows.push((ON, HostBlock { sample_rate: hz, ..play(1) }, "none, refused"));
    }
    rows.push((ON, play(2), "2 pjq"));
    check("refused rates", Render::Realtime, &rows);
    check(
        "no position from the host",
        Render::Realtime,
        &[
            (ON, play(0), "0 pjq"),
            (ON, HostBlock { position: None, ..play(1) }, "none, no position"),
            (ON, play(2), "2 pjq"),
        ],
    );
}

#[test]
fn a_rate_or_offset_change_is_a_jump() {
    let at_30 = SendSettings { rate: FrameRate::FPS_30, ..ON };
    let offset = SendSettings { offset_frames: 90_000, ..ON };
    check(
        "rate and offset",
        Render::Realtime,
        // 30 fps at 48 kHz: a frame every 1600 samples; frame 2 starts at 3200, frame 3 at 4800.
        &[
            (ON, play(0), "0 pjq"),
            (at_30, play(1), "1 pjq, 2 pq"),
            (at_30, play(2), "3 pq"),
            (offset, play(3), "90003 pjq"),
        ],
    );
}

#[test]
fn a_reset_makes_the_next_frame_a_jump() {
    let mut policy = SendPolicy::new(SR, ON, Render::Realtime);
    assert_eq!(run(&mut policy, &[(ON, play(0)), (ON, play(1))]), ["0 pjq", "1 pq"]);
    policy.resync();
    assert_eq!(run(&mut policy, &[(ON, play(2))]), ["2 pjq"]);
}

#[test]
fn a_stop_owed_before_a_reactivation_is_still_sent_after_it() {
    let mut policy = SendPolicy::new(SR, ON, Render::Realtime);
    assert_eq!(run(&mut policy, &[(ON, play(0))]), ["0 pjq"]);
    policy.reactivate(SR, ON, Render::Realtime);
    assert_eq!(run(&mut policy, &[(ON, stop(1)), (ON, stop(5))]), ["1 jq", "5 j"]);
    // A new policy owes nothing.
    let mut fresh = SendPolicy::new(SR, ON, Render::Realtime);
    assert_eq!(run(&mut fresh, &[(ON, stop(1))]), ["1 j"]);
    // Re-activated offline at another rate: the new mode and rate rule.
    policy.reactivate(96_000, ON, Render::OfflinePaced);
    assert_eq!(policy.sample_rate(), 96_000);
    let at_96k = HostBlock { sample_rate: 96_000.0, position: Some(3840), len: 3840, ..play(0) };
    assert_eq!(run(&mut policy, &[(ON, at_96k)]), ["1 pjq, @96000, paced"]);
}
