//! Our MTC read by a decoder nobody here wrote: mido 1.3.3 (PyPI), through
//! `tests/interop/mtc_check.py`. The stream a plugin would send block by block (a full frame,
//! then every quarter frame at its sample) goes to the script, which parses each message with
//! `mido.Parser`, checks the quarter frames' samples and piece numbers against the spec's timing
//! rule computed in Python, and reassembles each 8-piece sequence; this side checks the times
//! against the labels of `Timecode` (not the encoder).

use osc_timecode_core::clock::offset_frames;
use osc_timecode_core::mtc::{MtcFormat, QuarterClock};
use osc_timecode_core::timecode::frame_at_sample;
use osc_timecode_core::{FrameRate, Timecode};

#[path = "interop/mido.rs"]
mod mido;

use mido::{check, hex, require_mido};

/// `[hh, mm, ss, ff]` MTC carries for our frame `frame`: its label, frames halved in half-rate.
fn label_fields(frame: i64, rate: FrameRate) -> [u32; 4] {
    let tc = Timecode::from_frame(frame, rate);
    let halve = if rate.nominal() > 30 { 2 } else { 1 };
    [tc.hours(), tc.minutes(), tc.seconds(), tc.frames() / halve].map(u32::from)
}

/// Streams `frames` frames from timeline sample `begin` in 512-sample blocks and checks them.
fn stream(rate: FrameRate, code: u32, sample_rate: u32, offset: i64, begin: i64, frames: i64) {
    let what = format!("{rate} @ {sample_rate} Hz, offset {offset}, from sample {begin}");
    let format = MtcFormat::new(rate, rate.nominal() > 30).expect("carried");
    let clock = QuarterClock::new(format, sample_rate, offset);
    let end = begin + frames * i64::from(sample_rate) * i64::from(rate.den()) / i64::from(rate.num());
    let step = if rate.nominal() > 30 { 2 } else { 1 };
    let mut input = format!("{} {} {sample_rate} {offset} {step} {begin} {end}\n", rate.num(), rate.den());
    let start_frame = frame_at_sample(begin, sample_rate, rate) + offset;
    input += &format!("{begin} {}\n", hex(&format.full_frame(start_frame)));
    let mut block = begin;
    let mut sent = 0;
    while block < end {
        let block_end = (block + 512).min(end);
        let mut q = clock.first_quarter_from(block);
        while clock.quarter_start_sample(q) < block_end {
            input += &format!("{} {}\n", clock.quarter_start_sample(q), hex(&clock.quarter_message(q)));
            q += 1;
            sent += 1;
        }
        block = block_end;
    }
    let out = check(&input, &what);
    let mut sequences = 0;
    for line in out.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        match f[0] {
            "ok" => assert_eq!(f[1].parse::<i32>().unwrap(), sent, "{what}: quarter frames counted"),
            "seq" | "full" => {
                let at: i64 = f[1].parse().unwrap();
                let got: Vec<u32> = f[2..7].iter().map(|v| v.parse().unwrap()).collect();
                let frame = frame_at_sample(at, sample_rate, rate) + offset;
                let [hh, mm, ss, ff] = label_fields(frame, rate);
                assert_eq!(got, [hh, mm, ss, ff, code], "{what}: {line} (frame {frame})");
                if f[0] == "seq" {
                    sequences += 1;
                    assert_eq!(frame.rem_euclid(2 * step), 0, "{what}: a sequence starts on an even MTC frame");
                }
            }
            other => panic!("{what}: checker said {other:?}"),
        }
    }
    assert!(sequences >= frames / (2 * step) - 1, "{what}: only {sequences} complete sequences");
}

#[test]
#[ignore = "needs mido: python3 -m pip install mido==1.3.3"]
fn mido_reads_our_mtc_at_every_rate() {
    require_mido();
    let cases = [
        (FrameRate::FPS_23_976, 0),
        (FrameRate::FPS_24, 0),
        (FrameRate::FPS_25, 1),
        (FrameRate::FPS_29_97_NDF, 3),
        (FrameRate::FPS_29_97_DF, 2),
        (FrameRate::FPS_30, 3),
        (FrameRate::FPS_50, 1),
        (FrameRate::FPS_59_94_NDF, 3),
        (FrameRate::FPS_59_94_DF, 2),
        (FrameRate::FPS_60, 3),
    ];
    for (rate, code) in cases {
        for sample_rate in [44_100, 48_000, 96_000] {
            // One hour in, over a minute boundary (drop-frame skips labels there).
            stream(rate, code, sample_rate, offset_frames(3600, rate), 59 * i64::from(sample_rate) + 7, 150);
            // Across midnight: offset 23:59:59, the first two seconds.
            stream(rate, code, sample_rate, offset_frames(86_399, rate), 0, 120);
            // Pre-roll before timeline zero, no offset: the labels of the day's end.
            stream(rate, code, sample_rate, 0, -i64::from(sample_rate) - 3, 90);
        }
    }
}
