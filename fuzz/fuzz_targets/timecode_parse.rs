//! Every parser of timecode text: `Timecode::parse` at each rate (core/src/timecode.rs), the
//! line parser of `osc-timecode convert` (`convert::convert_line`: timecode, frames, samples,
//! seconds, auto-detected or forced), the rate names (`config::parse_rate`) and the plugin's
//! Start Offset parameter text (`params::parse_offset`, what a host calls when the user types a
//! value).
//!
//! Input: the text. Checks, besides "never panics": a parsed label prints back as the same text
//! and converts to a frame within the day and back; a parsed rate's name parses to it; a parsed
//! offset is within the day and formats back to itself; seconds print back to a value that
//! parses the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use osc_timecode_client::config::parse_rate;
use osc_timecode_client::convert::{Kind, convert_line};
use osc_timecode_client::seconds::Seconds;
use osc_timecode_core::{FrameRate, Timecode};
use osc_timecode_plugin::params::{format_offset, parse_offset};

const KINDS: [Option<Kind>; 5] =
    [None, Some(Kind::Frames), Some(Kind::Samples), Some(Kind::Seconds), Some(Kind::Timecode)];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for (i, rate) in FrameRate::ALL.into_iter().enumerate() {
        if let Ok(tc) = Timecode::parse(text, rate) {
            assert_eq!(tc.label().as_str(), text, "a parsed label prints back as itself");
            let frame = tc.to_frame();
            assert!((0..rate.frames_per_day()).contains(&frame), "{text} at {rate}: frame {frame}");
            assert_eq!(Timecode::from_frame(frame, rate), tc, "{text} at {rate}");
        }
        // Each input kind, each output kind, across the rates; 44.1 kHz for samples.
        let from = KINDS[i % KINDS.len()];
        for to in KINDS {
            let _ = convert_line(rate, Some(44_100), from, to, text.trim());
        }
        let _ = convert_line(rate, None, None, None, text.trim());
    }
    if let Ok(rate) = parse_rate(text) {
        assert_eq!(parse_rate(rate.name()), Ok(rate), "{text:?}");
    }
    if let Some(seconds) = parse_offset(text) {
        assert!((0..86_400).contains(&seconds), "{text:?}: {seconds}");
        assert_eq!(parse_offset(&format_offset(seconds)), Some(seconds));
    }
    if let Ok(seconds) = text.parse::<Seconds>() {
        assert_eq!(seconds.to_string().parse::<Seconds>(), Ok(seconds), "{text:?}");
    }
});
