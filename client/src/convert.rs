//! `osc-timecode convert`: frames, samples, seconds and timecode labels into one another, one
//! value from the command line or one per line from standard input.
//!
//! Every conversion goes through the frame index, with `osc_timecode_core`'s exact integer
//! arithmetic and the conventions of `core/tests/data/README.md`: the input names a frame (the
//! one it falls in), the output describes that frame (its label, index, first sample or first
//! nanosecond). So outputs always convert back to the same frame.

use std::io::{self, BufRead, BufReader, IsTerminal, Write};

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use osc_timecode_core::timecode::{frame_at_sample, frame_start_nanos, frame_start_sample};
use osc_timecode_core::{FrameRate, Timecode};

use crate::config::{self, ClientConfig};
use crate::exit::NotDone;
use crate::seconds::{self, Seconds};

/// What a value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// Frame index: 0 is 00:00:00:00, negative before it, never wrapped.
    Frames,
    /// Audio sample position at --sample-rate.
    Samples,
    /// Seconds as a decimal number.
    Seconds,
    /// Timecode label HH:MM:SS:FF (HH:MM:SS;FF at drop-frame rates).
    Timecode,
}

const ABOUT: &str = "Convert between frames, samples, seconds and timecode at any frame rate";

const LONG_ABOUT: &str = "\
Convert between frames, samples, seconds and timecode at any frame rate.

Converts one value given as --frames, --samples, --seconds or --timecode, or, with none of them, \
one value per line from standard input (one result per line on standard output).

Every conversion is exact (integer arithmetic, no floating point) and goes through the frame the \
input falls in:
  frames    frame 0 is 00:00:00:00; negative frames are before it
  samples   in: frame = floor(samples × fps / sample rate); out: the frame's first sample
  seconds   in: an exact decimal, frame = floor(seconds × fps); out: the frame's start with nine \
decimals, rounded up to its first whole nanosecond (so it converts back to the same frame)
  timecode  HH:MM:SS:FF, or HH:MM:SS;FF at drop-frame rates; parsed strictly: a label that \
drop-frame skips (00:01:00;00), a field out of range or the wrong separator is an error. In: the \
frame within the day, 0 to one less than the frames in a day
Labels wrap at 24 hours in both directions: frame -1 is the last label of the day \
(23:59:59;29 at 29.97df), as a generator cued before midnight shows. At 23.976, 29.97 and 59.94 \
a day of labels is not a day of wall clock: 3600 seconds at 29.97df is 01:00:00;00, but 3600 \
seconds at 29.97 (non-drop) is 00:59:56:12.

The output is timecode, or frames when the input is timecode; --to picks another.";

const AFTER_LONG_HELP: &str = "\
Standard input:
  With no value option, reads one value per line. Surrounding whitespace is trimmed and blank \
lines are skipped. Without --from, a line containing ':' or ';' is timecode and any other line is \
frames. A line that cannot be converted prints 'line N: <why>' on standard error and the others \
carry on; the exit status is then 1. Output is flushed whenever input pauses, so a script can \
drive one process line by line.

Defaults:
  --rate and --sample-rate fall back to OSC_TIMECODE_RATE / OSC_TIMECODE_SAMPLE_RATE, then to \
the [client] table of the config file (rate = \"29.97df\", sample_rate = 48000; see \
'osc-timecode --help'), then to rate 25. There is no default sample rate: converting samples at \
a guessed 48 kHz when the session runs at 44.1 kHz would be silently wrong.

Examples:
  osc-timecode convert --rate 29.97df --frames 1800
      00:01:00;02
  osc-timecode convert --rate 29.97df --timecode '01:00:00;00'      (quote the ';' from the shell)
      107892
  osc-timecode convert --rate 59.94df --frames -1
      23:59:59;59
  osc-timecode convert --rate 29.97df --seconds 3600
      01:00:00;00
  osc-timecode convert --rate 23.976 --timecode 00:00:01:00 --to seconds
      1.001000000
  osc-timecode convert --rate 25 --sample-rate 48000 --samples 172800000
      01:00:00:00
  osc-timecode convert --rate 24 --sample-rate 44100 --timecode 00:10:00:00 --to samples
      26460000
  seq 0 1800 9000 | osc-timecode convert --rate 29.97df
      one label per line
  cut -d, -f2 cues.csv | osc-timecode convert --rate 25 --from timecode --to seconds
      the start of each cue in seconds

Exit status: 0 on success; 1 when some lines of standard input could not be converted (the \
others were); 2 on any other error, a value given as an option included.";

/// `osc-timecode convert` options.
#[derive(Debug, Args)]
#[command(about = ABOUT, long_about = LONG_ABOUT, after_long_help = AFTER_LONG_HELP,
    after_help = "Examples and details: osc-timecode convert --help")]
pub struct ConvertArgs {
    /// Frame rate: 23.976, 24, 25, 29.97, 29.97df, 30, 50, 59.94, 59.94df or 60 [default: 25]
    #[arg(long, value_name = "RATE", env = config::RATE_ENV, value_parser = config::parse_rate)]
    rate: Option<FrameRate>,

    /// Audio sample rate in Hz, needed for samples (1 to 1536000)
    #[arg(long, value_name = "HZ", env = config::SAMPLE_RATE_ENV,
        value_parser = config::parse_sample_rate, allow_negative_numbers = true)]
    sample_rate: Option<u32>,

    /// Convert this frame index
    #[arg(long, value_name = "N", group = "value", allow_negative_numbers = true)]
    frames: Option<i64>,

    /// Convert this sample position (needs --sample-rate)
    #[arg(long, value_name = "N", group = "value", allow_negative_numbers = true)]
    samples: Option<i64>,

    /// Convert this many seconds (an exact decimal: 3600, -0.5, 12.345678)
    #[arg(long, value_name = "S", group = "value", allow_negative_numbers = true)]
    seconds: Option<Seconds>,

    /// Convert this timecode label (HH:MM:SS:FF, HH:MM:SS;FF at drop-frame rates)
    // NOTE: hyphen values allowed so that `-00:00:05:00` gets the timecode parser's message
    //       ("malformed timecode") rather than clap's "unexpected argument".
    #[arg(long, value_name = "TC", group = "value", allow_hyphen_values = true)]
    timecode: Option<String>,

    /// Kind of every line of standard input [default: timecode if the line has ':' or ';', else
    /// frames]
    #[arg(long, value_name = "KIND", value_enum, conflicts_with = "value")]
    from: Option<Kind>,

    /// Kind of the output [default: timecode; frames when the input is timecode]
    #[arg(long, value_name = "KIND", value_enum)]
    to: Option<Kind>,
}

/// A value to convert, as given.
#[derive(Debug, Clone, Copy)]
enum Input<'a> {
    Frames(i64),
    Samples(i64),
    Seconds(Seconds),
    Timecode(&'a str),
}

/// The settled rate, sample rate and output kind.
#[derive(Debug, Clone, Copy)]
struct Converter {
    rate: FrameRate,
    sample_rate: Option<u32>,
    to: Option<Kind>,
}

/// Runs `convert`: writes results to standard output.
pub fn run(args: ConvertArgs, config: &ClientConfig) -> anyhow::Result<()> {
    let converter = Converter {
        rate: args.rate.or(config.rate).unwrap_or(config::DEFAULT_RATE),
        sample_rate: args.sample_rate.or(config.sample_rate),
        to: args.to,
    };
    let single = if let Some(n) = args.frames {
        Some(Input::Frames(n))
    } else if let Some(n) = args.samples {
        Some(Input::Samples(n))
    } else if let Some(s) = args.seconds {
        Some(Input::Seconds(s))
    } else {
        args.timecode.as_deref().map(Input::Timecode)
    };
    // Refuse a missing sample rate before reading any input, not once per line.
    let input_kind = single.map(Input::kind).or(args.from);
    if input_kind == Some(Kind::Samples) || args.to == Some(Kind::Samples) {
        converter.sample_rate()?;
    }

    let stdout = io::stdout();
    match single {
        Some(input) => {
            let result = converter.convert(input)?;
            let mut out = stdout.lock();
            writeln!(out, "{result}").and_then(|()| out.flush()).context("could not write to standard output")
        }
        None => {
            let stdin = io::stdin();
            if stdin.is_terminal() {
                crate::note(&format!(
                    "reading values from standard input, one per line; end with {} (see 'osc-timecode convert --help')",
                    if cfg!(windows) { "Ctrl-Z, Enter" } else { "Ctrl-D" }
                ));
            }
            converter.batch(stdin.lock(), stdout.lock(), io::stderr(), args.from)
        }
    }
}

/// One line as `convert` reads it from standard input (`text` already trimmed), at `rate`, to
/// its output text: what `seq 0 1800 9000 | osc-timecode convert --rate 29.97df` does per line.
/// `from` and `to` as the flags (`None`: guessed from the text / the default).
pub fn convert_line(
    rate: FrameRate,
    sample_rate: Option<u32>,
    from: Option<Kind>,
    to: Option<Kind>,
    text: &str,
) -> anyhow::Result<String> {
    Converter { rate, sample_rate, to }.convert_text(text, from)
}

impl Input<'_> {
    fn kind(self) -> Kind {
        match self {
            Self::Frames(_) => Kind::Frames,
            Self::Samples(_) => Kind::Samples,
            Self::Seconds(_) => Kind::Seconds,
            Self::Timecode(_) => Kind::Timecode,
        }
    }
}

impl Converter {
    fn sample_rate(&self) -> anyhow::Result<u32> {
        self.sample_rate.context(
            "samples need a sample rate: pass --sample-rate HZ (e.g. 48000), set OSC_TIMECODE_SAMPLE_RATE, \
             or set sample_rate in the config file's [client] table",
        )
    }

    /// One value to its output text.
    fn convert(&self, input: Input<'_>) -> anyhow::Result<String> {
        let rate = self.rate;
        let frame = match input {
            Input::Frames(n) => n,
            Input::Samples(n) => frame_at_sample(n, self.sample_rate()?, rate),
            Input::Seconds(s) => {
                s.frame(rate).with_context(|| format!("{s} seconds is beyond the frames countable at {rate}"))?
            }
            Input::Timecode(text) => Timecode::parse(text, rate)?.to_frame(),
        };
        let to = self.to.unwrap_or(match input {
            Input::Timecode(_) => Kind::Frames,
            _ => Kind::Timecode,
        });
        Ok(match to {
            Kind::Frames => frame.to_string(),
            Kind::Samples => frame_start_sample(frame, self.sample_rate()?, rate).to_string(),
            Kind::Seconds => seconds::format_nanos(frame_start_nanos(frame, rate)),
            Kind::Timecode => Timecode::from_frame(frame, rate).to_string(),
        })
    }

    /// One line of standard input (already trimmed) to its output text.
    fn convert_text(&self, text: &str, from: Option<Kind>) -> anyhow::Result<String> {
        let guessed = from.is_none();
        let from = from.unwrap_or(if text.contains([':', ';']) { Kind::Timecode } else { Kind::Frames });
        let input = match from {
            Kind::Frames => Input::Frames(parse_integer(text, "frame index", guessed)?),
            Kind::Samples => Input::Samples(parse_integer(text, "sample position", false)?),
            Kind::Seconds => Input::Seconds(text.parse()?),
            Kind::Timecode => Input::Timecode(text),
        };
        self.convert(input)
    }

    /// Converts each line of `input`, writing one line to `out` per value. Failed lines are
    /// reported on `errors` (standard error) and counted; the count is the error at the end.
    fn batch(
        &self,
        input: impl BufRead,
        out: impl Write,
        mut errors: impl Write,
        from: Option<Kind>,
    ) -> anyhow::Result<()> {
        let mut input = BufReader::with_capacity(64 * 1024, input);
        let mut out = io::BufWriter::with_capacity(64 * 1024, out);
        let (mut line_number, mut values, mut failures) = (0u64, 0u64, 0u64);
        let mut line = Vec::new();
        let written = loop {
            // Flush before a read that may block, so a script talking to us line by line sees
            // each answer, while a file or a pipe full of lines is still written in big blocks.
            if input.buffer().is_empty()
                && let Err(e) = out.flush()
            {
                break Err(e);
            }
            line.clear();
            if input.read_until(b'\n', &mut line).context("could not read standard input")? == 0 {
                break out.flush();
            }
            line_number += 1;
            let result = match std::str::from_utf8(&line) {
                Ok(text) if text.trim().is_empty() => continue,
                Ok(text) => self.convert_text(text.trim(), from),
                Err(_) => Err(anyhow::anyhow!("not UTF-8 text")),
            };
            values += 1;
            match result {
                Ok(text) => {
                    if let Err(e) = writeln!(out, "{text}") {
                        break Err(e);
                    }
                }
                Err(e) => {
                    failures += 1;
                    // Keep the order of results and errors on a terminal.
                    if let Err(e) = out.flush() {
                        break Err(e);
                    }
                    // A closed standard error is ignored: nowhere left to report it.
                    let _ = writeln!(errors, "osc-timecode: line {line_number}: {e:#}");
                }
            }
        };
        match written {
            Ok(()) => {}
            // The reader went away (`| head -1`): nothing left to say to it; not an error.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
            Err(e) => return Err(e).context("could not write to standard output"),
        }
        if failures > 0 {
            bail!(NotDone::new(format!("{failures} of {values} values could not be converted")));
        }
        Ok(())
    }
}

/// A whole number from standard input, with a hint when it looks like a value of another kind.
fn parse_integer(text: &str, what: &str, guessed: bool) -> anyhow::Result<i64> {
    text.parse().map_err(|e: std::num::ParseIntError| {
        let hint = match e.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                " (beyond ±9223372036854775807)"
            }
            _ if guessed && text.parse::<Seconds>().is_ok() => {
                " (lines without ':' or ';' are read as frames; use --from seconds for seconds)"
            }
            _ => "",
        };
        anyhow::anyhow!("invalid {what} {text:?}: expected a whole number{hint}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn converter(rate: FrameRate, sample_rate: Option<u32>, to: Option<Kind>) -> Converter {
        Converter { rate, sample_rate, to }
    }

    #[test]
    fn default_output_kinds() {
        let c = converter(FrameRate::FPS_29_97_DF, Some(48_000), None);
        assert_eq!(c.convert(Input::Frames(1800)).unwrap(), "00:01:00;02", "the issue's example");
        assert_eq!(c.convert(Input::Timecode("00:01:00;02")).unwrap(), "1800");
        assert_eq!(c.convert(Input::Samples(1602)).unwrap(), "00:00:00;01");
        assert_eq!(c.convert(Input::Seconds("3600".parse().unwrap())).unwrap(), "01:00:00;00");
        assert_eq!(c.convert(Input::Frames(-1)).unwrap(), "23:59:59;29");
    }

    #[test]
    fn every_output_kind() {
        let rate = FrameRate::FPS_29_97_DF;
        let cases = [
            (Kind::Frames, "-1"),
            (Kind::Samples, "-1601"),
            (Kind::Seconds, "-0.033366666"),
            (Kind::Timecode, "23:59:59;29"),
        ];
        for (to, want) in cases {
            let c = converter(rate, Some(48_000), Some(to));
            assert_eq!(c.convert(Input::Frames(-1)).unwrap(), want, "frame -1 to {to:?}");
        }
    }

    #[test]
    fn auto_detected_lines() {
        let c = converter(FrameRate::FPS_25, None, None);
        assert_eq!(c.convert_text("25", None).unwrap(), "00:00:01:00");
        assert_eq!(c.convert_text("00:00:01:00", None).unwrap(), "25");
        assert_eq!(c.convert_text("-25", None).unwrap(), "23:59:59:00");
        let e = format!("{:#}", c.convert_text("1.5", None).unwrap_err());
        assert!(e.contains("--from seconds"), "hint for a decimal: {e}");
        let e = format!("{:#}", c.convert_text("00:00:01;00", None).unwrap_err());
        assert!(e.contains("wrong separator"), "{e}");
        let e = format!("{:#}", c.convert_text("99999999999999999999", None).unwrap_err());
        assert!(e.contains("beyond"), "{e}");
        assert_eq!(c.convert_text("1.5", Some(Kind::Seconds)).unwrap(), "00:00:01:12");
    }

    #[test]
    fn samples_need_a_sample_rate() {
        let c = converter(FrameRate::FPS_25, None, None);
        let e = format!("{:#}", c.convert(Input::Samples(0)).unwrap_err());
        assert!(e.contains("--sample-rate"), "{e}");
        let c = converter(FrameRate::FPS_25, None, Some(Kind::Samples));
        assert!(c.convert(Input::Frames(0)).is_err());
    }

    #[test]
    fn batch_continues_past_bad_lines_and_counts_them() {
        let c = converter(FrameRate::FPS_25, None, None);
        let (mut out, mut errors) = (Vec::new(), Vec::new());
        let input = &b"0\n\n  25 \r\nbad\n00:00:02:00\n\xff\n"[..];
        let e = c.batch(input, &mut out, &mut errors, None).unwrap_err();
        assert_eq!(String::from_utf8(out).unwrap(), "00:00:00:00\n00:00:01:00\n50\n");
        assert_eq!(
            String::from_utf8(errors).unwrap(),
            "osc-timecode: line 4: invalid frame index \"bad\": expected a whole number\n\
             osc-timecode: line 6: not UTF-8 text\n",
            "line numbers count blank lines"
        );
        assert_eq!(e.to_string(), "2 of 5 values could not be converted");
        let (mut out, mut errors) = (Vec::new(), Vec::new());
        c.batch(&b"1\n2"[..], &mut out, &mut errors, None).unwrap();
        assert_eq!(out, b"00:00:00:01\n00:00:00:02\n", "last line without a newline");
        assert!(errors.is_empty());
    }
}
