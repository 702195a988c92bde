//! Every row of the reference vectors (`core/tests/data/*.csv`, see its README.md) against the
//! core arithmetic. The folder is found by `data` (the repository's copy, or
//! `$OSC_TIMECODE_REFERENCE_DIR`); a missing folder, a missing file, a changed header or an empty
//! file fails the test: passing must mean the vectors were checked.
//!
//! Each test collects every mismatching row and reports them together (with file and line), so
//! one run shows the whole extent of a regression.

mod data;

use std::ffi::OsString;

use data::{DIR_VAR, MTC_VECTORS, Row, locate, read_csv};
use osc_timecode_core::timecode::{frame_at_sample, frame_start_sample};
use osc_timecode_core::{FrameRate, Timecode, TimecodeError};

/// How many failing rows a test prints before summarising the rest.
const SHOWN_FAILURES: usize = 40;

/// The README's rate labels with their exact rational rates, written out independently of
/// `FrameRate` so that its `FromStr` is checked too.
const RATE_LABELS: [(&str, u32, u32, bool); 10] = [
    ("23.976", 24000, 1001, false),
    ("24", 24, 1, false),
    ("25", 25, 1, false),
    ("29.97ndf", 30000, 1001, false),
    ("29.97df", 30000, 1001, true),
    ("30", 30, 1, false),
    ("50", 50, 1, false),
    ("59.94ndf", 60000, 1001, false),
    ("59.94df", 60000, 1001, true),
    ("60", 60, 1, false),
];

/// The rate a `rate_label` cell names, checked against the README table.
fn rate_of(label: &str) -> Result<FrameRate, String> {
    let &(_, num, den, drop) = RATE_LABELS
        .iter()
        .find(|(l, ..)| *l == label)
        .ok_or_else(|| format!("rate label {label:?} is not one the README lists"))?;
    let parsed: FrameRate = label.parse().map_err(|e| format!("FrameRate::from_str({label:?}): {e}"))?;
    if (parsed.num(), parsed.den(), parsed.is_drop()) != (num, den, drop) {
        return Err(format!("{label:?} parsed as {parsed:?}, README says {num}/{den} drop={drop}"));
    }
    Ok(parsed)
}

fn int<T: std::str::FromStr>(cell: &str, column: &str) -> Result<T, String> {
    cell.parse().map_err(|_| format!("column {column}: {cell:?} is not an integer"))
}

/// Tallies rows checked per rate label and the failures, and asserts at the end.
struct Tally {
    file: &'static str,
    checked: usize,
    per_rate: [usize; 10],
    failures: Vec<String>,
}

impl Tally {
    fn new(file: &'static str) -> Self {
        Self { file, checked: 0, per_rate: [0; 10], failures: Vec::new() }
    }

    /// Records one row's outcome.
    fn row(&mut self, row: &Row, outcome: Result<(), String>) {
        self.checked += 1;
        if let Some(i) = RATE_LABELS.iter().position(|(l, ..)| *l == row.fields[0]) {
            self.per_rate[i] += 1;
        }
        if let Err(why) = outcome {
            self.failures.push(format!("{}:{}: {} -> {why}", self.file, row.line, row.fields.join(",")));
        }
    }

    /// Fails on any mismatch, on an empty file, and (when `all_rates`) on a rate with no rows.
    fn finish(self, all_rates: bool) -> usize {
        let Self { file, checked, per_rate, failures } = self;
        assert!(
            failures.is_empty(),
            "{file}: {} of {checked} rows failed:\n{}{}",
            failures.len(),
            failures.iter().take(SHOWN_FAILURES).cloned().collect::<Vec<_>>().join("\n"),
            if failures.len() > SHOWN_FAILURES { "\n..." } else { "" }
        );
        assert!(checked > 0, "{file}: no rows checked");
        if all_rates {
            for ((label, ..), n) in RATE_LABELS.iter().zip(per_rate) {
                assert!(n > 0, "{file}: no rows for rate {label}; the vectors should cover all ten rates");
            }
        }
        eprintln!("{file}: {checked} rows checked");
        checked
    }
}

/// The label of `frame` as text, through both `label()` and `Display` (which must agree).
fn label_of(frame: i64, rate: FrameRate) -> Result<String, String> {
    let tc = Timecode::from_frame(frame, rate);
    let fixed = tc.label().as_str().to_owned();
    let shown = tc.to_string();
    if fixed != shown {
        return Err(format!("label() {fixed:?} and Display {shown:?} disagree for frame {frame}"));
    }
    Ok(fixed)
}

/// Parses `text` and returns its frame index within the day, checking the parsed fields
/// format back to the same text.
fn frame_of(text: &str, rate: FrameRate) -> Result<i64, String> {
    let tc = Timecode::parse(text, rate).map_err(|e| format!("parse({text:?}) failed: {e}"))?;
    if tc.label().as_str() != text {
        return Err(format!("parse({text:?}) formats back as {:?}", tc.label()));
    }
    Ok(tc.to_frame())
}

/// Checks one `timecode_vectors.csv` row: rate columns, frame → label, label → frame.
fn check_timecode_row(f: &[String]) -> Result<(), String> {
    let rate = rate_of(&f[0])?;
    let num: u32 = int(&f[1], "fps_num")?;
    let den: u32 = int(&f[2], "fps_den")?;
    let drop = match f[3].as_str() {
        "0" => false,
        "1" => true,
        other => return Err(format!("drop column {other:?} is not 0 or 1")),
    };
    match FrameRate::from_parts(num, den, drop) {
        Ok(r) if r == rate => {}
        other => {
            return Err(format!("from_parts({num}, {den}, {drop}) = {other:?}, rate label says {rate:?}"));
        }
    }
    let frame: i64 = int(&f[4], "frame_index")?;
    let expected = &f[5];
    let got = label_of(frame, rate)?;
    if got != *expected {
        return Err(format!("from_frame({frame}) = {got}, expected {expected}"));
    }
    let back = frame_of(expected, rate)?;
    let want = frame.rem_euclid(rate.frames_per_day());
    if back != want {
        return Err(format!("parse({expected}).to_frame() = {back}, expected {want}"));
    }
    Ok(())
}

#[test]
fn timecode_vectors_frame_to_label_and_back() {
    let rows =
        read_csv("timecode_vectors.csv", &["rate_label", "fps_num", "fps_den", "drop", "frame_index", "timecode"]);
    let mut tally = Tally::new("timecode_vectors.csv");
    for row in &rows {
        tally.row(row, check_timecode_row(&row.fields));
    }
    tally.finish(true);
}

/// Checks one `sample_vectors.csv` row: sample → frame (exact), the frame's samples, its label.
fn check_sample_row(f: &[String]) -> Result<(), String> {
    let rate = rate_of(&f[0])?;
    let sample_rate: u32 = int(&f[1], "sample_rate")?;
    let sample: i64 = int(&f[2], "sample_pos")?;
    let expected: i64 = int(&f[3], "expected_frame_index")?;
    let frame = frame_at_sample(sample, sample_rate, rate);
    if frame != expected {
        return Err(format!("frame_at_sample({sample}, {sample_rate}) = {frame}, expected {expected}"));
    }
    // The frame's first sample is at or before the position, the next frame's after it.
    let start = frame_start_sample(frame, sample_rate, rate);
    let next = frame_start_sample(frame + 1, sample_rate, rate);
    if !(start <= sample && sample < next) {
        return Err(format!("sample {sample} outside frame {frame}'s samples [{start}, {next})"));
    }
    let label = label_of(frame, rate)?;
    if label != f[4] {
        return Err(format!("label of frame {frame} = {label}, expected {}", f[4]));
    }
    Ok(())
}

#[test]
fn sample_vectors_sample_to_frame_and_label() {
    let rows = read_csv(
        "sample_vectors.csv",
        &["rate_label", "sample_rate", "sample_pos", "expected_frame_index", "expected_timecode"],
    );
    let mut tally = Tally::new("sample_vectors.csv");
    for row in &rows {
        tally.row(row, check_sample_row(&row.fields));
    }
    tally.finish(true);
}

/// Checks one invalid label is refused for the listed reason; returns the reason's index.
fn check_invalid_row(f: &[String]) -> Result<usize, String> {
    let rate = rate_of(&f[0])?;
    let text = f[1].as_str();
    let reason = f[2].as_str();
    let err = match Timecode::parse(text, rate) {
        Ok(tc) => return Err(format!("parse({text:?}) accepted it as {tc:?}; expected {reason}")),
        Err(e) => e,
    };
    // The variant, and the text it carries must be the text as given (not reformatted).
    let (matched, carried) = match (&err, reason) {
        (TimecodeError::Malformed(t), "malformed") => (0, t),
        (TimecodeError::OutOfRange { text: t, rate: r }, "out_of_range") if *r == rate => (1, t),
        (TimecodeError::WrongSeparator { text: t, rate: r }, "wrong_separator") if *r == rate => (2, t),
        (TimecodeError::DroppedLabel { text: t, rate: r }, "dropped_label") if *r == rate => (3, t),
        _ => return Err(format!("parse({text:?}) = {err:?}, expected reason {reason}")),
    };
    if carried != text {
        return Err(format!("error {err:?} carries {carried:?}, not the input {text:?}"));
    }
    if err.to_string().is_empty() {
        return Err(format!("error {err:?} has an empty message"));
    }
    Ok(matched)
}

#[test]
fn invalid_timecodes_are_refused_with_the_listed_reason() {
    let rows = read_csv("invalid_timecodes.csv", &["rate_label", "timecode", "reason"]);
    let mut tally = Tally::new("invalid_timecodes.csv");
    let mut per_reason = [0usize; 4];
    for row in &rows {
        let outcome = check_invalid_row(&row.fields);
        if let Ok(reason) = outcome {
            per_reason[reason] += 1;
        }
        tally.row(row, outcome.map(drop));
    }
    tally.finish(false);
    for (reason, n) in ["malformed", "out_of_range", "wrong_separator", "dropped_label"].iter().zip(per_reason) {
        assert!(n > 0, "invalid_timecodes.csv: no rows with reason {reason}");
    }
}

/// MTC rate code (bits 5-6 of the hours byte) a rate is sent with, per README convention 8:
/// 0 = 24, 1 = 25, 2 = 29.97 DF, 3 = 30; 23.976 goes as 24, 29.97 NDF as 30, and 50/59.94/60
/// as their halves.
fn mtc_rate_code(rate: FrameRate) -> u8 {
    match (rate.nominal(), rate.is_drop()) {
        (24, _) => 0,
        (25 | 50, _) => 1,
        (30 | 60, true) => 2,
        _ => 3,
    }
}

/// Checks one `mtc_vectors.csv` row: frame ↔ label, and the MTC fields and SysEx from the label.
fn check_mtc_row(f: &[String]) -> Result<(), String> {
    let rate = rate_of(&f[0])?;
    let frame: i64 = int(&f[1], "frame_index")?;
    let label = label_of(frame, rate)?;
    if label != f[2] {
        return Err(format!("from_frame({frame}) = {label}, expected {}", f[2]));
    }
    let back = frame_of(&f[2], rate)?;
    if back != frame.rem_euclid(rate.frames_per_day()) {
        return Err(format!("parse({}).to_frame() = {back}, expected {frame}", f[2]));
    }
    // The MTC fields are the label's, with the frame number halved above 30 fps.
    let tc = Timecode::from_frame(frame, rate);
    let divisor = if rate.nominal() > 30 { 2 } else { 1 };
    let code = mtc_rate_code(rate);
    let want = [code, tc.hours(), tc.minutes(), tc.seconds(), tc.frames() / divisor];
    let mut got = [0u8; 5];
    for (i, (cell, column)) in f[3..8].iter().zip(["mtc_rate_code", "mtc_hh", "mtc_mm", "mtc_ss", "mtc_ff"]).enumerate()
    {
        got[i] = int(cell, column)?;
    }
    if got != want {
        return Err(format!("MTC [code, hh, mm, ss, ff] = {got:?}, label {label} gives {want:?}"));
    }
    // Full-frame message: F0 7F 7F 01 01 (code << 5 | hh) mm ss ff F7.
    let sysex = [0xF0, 0x7F, 0x7F, 0x01, 0x01, code << 5 | want[1], want[2], want[3], want[4], 0xF7];
    let sysex_hex = sysex.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(" ");
    if sysex_hex != f[8] {
        return Err(format!("full-frame SysEx {:?}, fields give {sysex_hex:?}", f[8]));
    }
    Ok(())
}

#[test]
fn mtc_vectors_timecode_and_fields() {
    let rows = read_csv(MTC_VECTORS.0, &MTC_VECTORS.1);
    let mut tally = Tally::new("mtc_vectors.csv");
    for row in &rows {
        tally.row(row, check_mtc_row(&row.fields));
    }
    tally.finish(true);
}

#[test]
fn missing_reference_folder_fails_naming_the_path() {
    let missing = concat!(env!("CARGO_MANIFEST_DIR"), "/no-such-reference-folder");
    assert!(!std::path::Path::new(missing).exists(), "test precondition: {missing} must not exist");
    let payload = std::panic::catch_unwind(|| locate(Some(OsString::from(missing))))
        .expect_err("a missing reference folder must fail the tests, not skip them");
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or_default();
    assert!(
        message.contains("not found") && message.contains(missing) && message.contains(DIR_VAR),
        "the failure should say where it looked and how to override; got {message:?}"
    );
}

#[test]
fn the_default_folder_is_the_repository_copy() {
    let dir = locate(None);
    assert!(dir.ends_with("core/tests/data"), "{}", dir.display());
    for file in ["README.md", "timecode_vectors.csv", "sample_vectors.csv", "invalid_timecodes.csv", "mtc_vectors.csv"]
    {
        assert!(dir.join(file).is_file(), "{} is missing from {}", file, dir.display());
    }
}
