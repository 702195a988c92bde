//! The client's LTC (issue 17) rendered from a chased master into a Broadcast Wave file, read
//! back by code nobody here wrote: Python's `struct` walks the RIFF chunks (bext TimeReference,
//! format, the samples) and x42's libltc decodes every word (`core/tests/interop/libltc.rs`).
//!
//! A synthetic master plays frames at 25 or 29.97 DF, each packet sent 20 ms before it is heard
//! and timetagged with the instant it is heard; it locates (jump flag), loops (loop flag) and
//! stops. A `Chase` follows it as `listen` does (packets delivered when they arrive, a tick per
//! 10 ms block), and `LtcRenderer` renders each block from the chase's snapshot into a
//! `BwfWriter`. The file must hold every frame the master played after the chase locked, in
//! order, each word on the sample where the master's frame starts (within libltc's 0-2 sample
//! detection latency; exact in `outputs::ltc`'s unit tests), and nothing after the stop.

use std::path::{Path, PathBuf};

use osc_timecode_client::outputs::ltc::{BwfWriter, Idle, LtcRenderer, WavSamples, WordStart};
use osc_timecode_core::chase::{Chase, ChaseConfig};
use osc_timecode_core::protocol::TimecodeMessage;
use osc_timecode_core::{FrameRate, Timecode};

#[path = "util/bwf.rs"]
mod bwf;
use bwf::read_back;

#[path = "../../core/tests/interop/libltc.rs"]
#[allow(dead_code, reason = "the reader's level and byte fields are for other tests")]
mod libltc;

const NANOS: i128 = 1_000_000_000;
/// The master's first frame is heard at this wall time (ns since the epoch).
const T_A: i128 = 1_700_000_000 * NANOS;

/// One master packet: the message, when it is heard (its timetag), when it arrives.
struct Packet {
    msg: TimecodeMessage,
    heard: i128,
    arrival: i128,
}

/// The master's frames as heard: `(frame, first instant)`, in order, and its packets.
struct Master {
    played: Vec<(i64, i128)>,
    packets: Vec<Packet>,
    stop_at: i128,
}

/// The first whole nanosecond of the `n`-th frame after one heard at `t`.
fn after(t: i128, n: i64, rate: FrameRate) -> i128 {
    let x = i128::from(n) * i128::from(rate.den()) * NANOS;
    t + -(-x).div_euclid(i128::from(rate.num()))
}

/// Plays 90 000..90 100, locates to 180 000..180 060, loops to 180 010..180 050 and parks on
/// 180 050 (with a keep-alive a second later).
fn master(rate: FrameRate) -> Master {
    let mut m = Master { played: Vec::new(), packets: Vec::new(), stop_at: 0 };
    let mut seq = 0;
    let mut heard = T_A;
    for (first, last, jump, looped) in
        [(90_000i64, 90_100i64, true, false), (180_000, 180_060, true, false), (180_010, 180_050, true, true)]
    {
        let start = heard;
        for f in first..last {
            let at = after(start, f - first, rate);
            let msg = TimecodeMessage::new(f, rate, true, seq, jump && f == first, looped && f == first);
            seq += 1;
            m.played.push((f, at));
            m.packets.push(Packet { msg, heard: at, arrival: at - 20_000_000 });
        }
        heard = after(start, last - first, rate);
    }
    m.stop_at = heard;
    for (i, at) in [heard, heard + NANOS].into_iter().enumerate() {
        let msg = TimecodeMessage::new(180_050, rate, false, seq + i as i64, false, false);
        m.packets.push(Packet { msg, heard: at, arrival: at - 20_000_000 });
    }
    m
}

/// Renders the master's show into `path` (f32 WAV) in 10 ms blocks from stream origin `t0`; returns
/// the rendered samples and the words begun.
fn render(rate: FrameRate, sample_rate: u32, t0: i128, path: &Path) -> (Master, Vec<f32>, Vec<WordStart>) {
    let m = master(rate);
    let mut chase = Chase::new(ChaseConfig::default());
    let mut renderer = LtcRenderer::new(sample_rate, -18.0, false, Idle::Silence, t0).expect("renderer");
    let mut wav = BwfWriter::create(path, sample_rate, WavSamples::Float32).expect("create");
    let block = (sample_rate / 100) as usize;
    let end = renderer.sample_of(m.stop_at + NANOS / 2);
    let mut all = Vec::new();
    let mut words = Vec::new();
    let mut next = 0;
    let mut out = vec![0.0f32; block];
    while renderer.position() < end {
        let now = t0 + i128::from(renderer.position()) * NANOS / i128::from(sample_rate);
        while let Some(p) = m.packets.get(next).filter(|p| p.arrival <= now) {
            chase.on_packet(&p.msg, Some(p.heard), p.arrival);
            next += 1;
        }
        chase.tick(now);
        let rendered = renderer.render(&chase.snapshot(), &mut out, |w| words.push(w)).expect("LTC carries the rate");
        assert!(!rendered.lost, "the master never goes quiet while playing");
        wav.write(&out).expect("write");
        all.extend_from_slice(&out);
    }
    wav.set_time_reference(renderer.time_reference().expect("words were played"));
    wav.finish().expect("finish");
    (m, all, words)
}

fn temp(what: &str) -> PathBuf {
    std::env::temp_dir().join(format!("osc-timecode-ltc-wav-{}-{what}.wav", std::process::id()))
}

/// The stream sample of wall time `t`, rounded to the nearest: computed here from the master's
/// instants, not by the renderer.
fn sample_at(t: i128, t0: i128, sample_rate: u32) -> i64 {
    ((2 * (t - t0) * i128::from(sample_rate) + NANOS).div_euclid(2 * NANOS)) as i64
}

/// The first sample's label position in samples since midnight, from the master's first frame.
fn expected_time_reference(rate: FrameRate, sample_rate: u32, t0: i128) -> i64 {
    // Frame 90 000 (in the day) starts 90 000 · den/num s after midnight; t0 is t0 − T_A later.
    let ns = i128::from(90_000i64) * i128::from(rate.den()) * NANOS / i128::from(rate.num()) + (t0 - T_A);
    ((2 * ns * i128::from(sample_rate) + NANOS).div_euclid(2 * NANOS)) as i64
}

/// The file as Python reads it: the samples rendered, mono float at the stream rate, and the
/// bext TimeReference the first sample's timecode position; the words where the master's frames
/// start, across the locate, the loop and the stop.
#[test]
fn the_wav_file_holds_the_master_s_frames_at_its_timecode() {
    for (rate, sample_rate, origin) in
        [(FrameRate::FPS_25, 48_000, 12_345_678i128), (FrameRate::FPS_29_97_DF, 48_000, -3)]
    {
        let what = format!("{rate} at {sample_rate} Hz");
        let path = temp(&format!("{}", rate.num()));
        let t0 = T_A + origin;
        let (m, samples, words) = render(rate, sample_rate, t0, &path);
        let (tag, channels, sr, bits, time_reference, back) = read_back(&path);
        let _ = std::fs::remove_file(&path);
        assert_eq!((tag, channels, sr, bits), (3, 1, sample_rate, 32), "{what}: mono float");
        assert_eq!(back, samples, "{what}: the data chunk is the rendered stream");
        let expect = expected_time_reference(rate, sample_rate, t0);
        assert!(
            (time_reference as i64 - expect).abs() <= 1,
            "{what}: TimeReference {time_reference}, expected {expect}"
        );
        // Every word after the lock is a master frame, in the master's order, on its first sample.
        let first = m.played.iter().position(|(f, _)| *f == words[0].frame).expect("a master frame");
        assert!(first <= 4, "{what}: the words begin once the chase locks (3 frames), not later: {first}");
        assert_eq!(words.len(), m.played.len() - first, "{what}: every frame after that");
        for (w, (f, at)) in words.iter().zip(&m.played[first..]) {
            assert_eq!((w.frame, w.sample), (*f, sample_at(*at, t0, sample_rate)), "{what}");
        }
        let last = words.last().unwrap();
        let end = (last.sample + i64::from(last.len)) as usize;
        assert_eq!(end as i64, sample_at(m.stop_at, t0, sample_rate), "{what}: the last word ends at the stop");
        assert!(samples[end..].iter().all(|s| *s == 0.0), "{what}: silence once stopped");
    }
}

/// libltc reads the file: every word's label, in order (the master's frames across the locate
/// and the loop), each within libltc's 0-2 samples of where the master's frame starts.
#[test]
#[ignore = "needs libltc: apt-get install libltc11"]
fn libltc_reads_every_word_where_the_master_s_frame_starts() {
    libltc::require_libltc();
    for (rate, sample_rate, origin) in
        [(FrameRate::FPS_25, 48_000, 7_654_321i128), (FrameRate::FPS_29_97_DF, 48_000, 1)]
    {
        let what = format!("{rate} at {sample_rate} Hz");
        let path = temp(&format!("libltc-{}", rate.num()));
        let t0 = T_A + origin;
        let (m, _, words) = render(rate, sample_rate, t0, &path);
        let (_, _, _, _, _, back) = read_back(&path);
        let _ = std::fs::remove_file(&path);
        let decoded = libltc::decode(&back, sample_rate, rate, &what);
        let first = m.played.iter().position(|(f, _)| *f == words[0].frame).expect("a master frame");
        let expected = &m.played[first..];
        // libltc reports a word when the next one's first edge closes it, and the first word
        // out of silence teaches it the bit period: the first and the last word of the run (both
        // next to silence) may be missing, none in between (across the locate and the loop).
        let label = |f: i64| Timecode::from_frame(f, rate).label().to_string();
        let skip = usize::from(decoded.first().is_some_and(|d| d.label != label(expected[0].0)));
        let expected = &expected[skip..];
        assert!(
            decoded.len() == expected.len() || decoded.len() + 1 == expected.len(),
            "{what}: {} words decoded, {} played: {:?}",
            decoded.len(),
            expected.len(),
            decoded.iter().map(|d| (&d.label, d.off_start)).collect::<Vec<_>>()
        );
        for (d, (f, at)) in decoded.iter().zip(expected) {
            let label = label(*f);
            assert_eq!(d.label, label, "{what}: frame {f}");
            assert_eq!(d.df, rate.is_drop(), "{what}: frame {f}");
            let late = d.off_start - sample_at(*at, t0, sample_rate);
            assert!((0..=2).contains(&late), "{what}: frame {f} ({label}) read {late} samples from its start");
        }
    }
}
