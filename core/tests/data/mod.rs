//! Where the timecode reference vectors are, and how their CSV files are read: the one owner of
//! the folder's path for every test that checks against them (core's `tests/reference.rs` uses it
//! as `mod data;`, the client's `tests/util/mod.rs` through `#[path]`).
//!
//! The vectors live beside this file (`core/tests/data/`, see its README.md for where they came
//! from); `$OSC_TIMECODE_REFERENCE_DIR` names another folder instead. A missing folder, a missing
//! file, a changed header or an empty file fails the test: passing must mean the vectors were
//! checked.

// Shared by several test binaries; each uses only part of it.
#![allow(dead_code)]

use std::ffi::OsString;
use std::path::PathBuf;

/// `mtc_vectors.csv`: its file name and header (README.md, convention 8), for every test that
/// reads it.
pub const MTC_VECTORS: (&str, [&str; 9]) = (
    "mtc_vectors.csv",
    [
        "rate_label",
        "frame_index",
        "timecode",
        "mtc_rate_code",
        "mtc_hh",
        "mtc_mm",
        "mtc_ss",
        "mtc_ff",
        "full_frame_sysex_hex",
    ],
);

/// Environment variable that overrides where the reference CSV files are read from.
pub const DIR_VAR: &str = "OSC_TIMECODE_REFERENCE_DIR";

/// This folder, from any crate of the workspace: every member sits directly below the root, so
/// `<member>/../core/tests/data` is the same folder whichever crate's test includes this file.
const DEFAULT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../core/tests/data");

/// The reference folder. Panics (fails the test) with the place it looked when it is missing.
pub fn reference_dir() -> PathBuf {
    locate(std::env::var_os(DIR_VAR))
}

/// The folder named by `override_dir` (the value of `$OSC_TIMECODE_REFERENCE_DIR`) or, when that
/// is unset or empty, the vectors kept in the repository. Panics, naming the path, when it is not
/// a directory.
pub fn locate(override_dir: Option<OsString>) -> PathBuf {
    let (dir, origin) = match override_dir {
        Some(v) if !v.is_empty() => (PathBuf::from(v), format!("from ${DIR_VAR}")),
        _ => (PathBuf::from(DEFAULT_DIR), format!("the repository's copy; set ${DIR_VAR} to override")),
    };
    assert!(
        dir.is_dir(),
        "reference data folder not found: looked in {} ({origin}). The timecode reference vectors \
         are required; these tests never skip.",
        dir.display()
    );
    dir
}

/// One data row: its 1-based line number in the file and its fields.
pub struct Row {
    /// Line number in the file, counting the header as line 1.
    pub line: usize,
    /// The comma-separated fields, as text, in column order.
    pub fields: Vec<String>,
}

/// Reads `name` from the reference folder, checks the header is exactly `header`, and splits
/// each row on `,` (the files have no quoted fields; a `"` anywhere fails the test, since a
/// plain split would then be wrong). Every row must have as many fields as the header, and there
/// must be at least one row.
pub fn read_csv(name: &str, header: &[&str]) -> Vec<Row> {
    let path = reference_dir().join(name);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read reference file {}: {e}", path.display()));
    let mut lines = text.lines().enumerate();
    let (_, first) = lines.next().unwrap_or_else(|| panic!("{}: empty file", path.display()));
    let first = first.strip_prefix('\u{feff}').unwrap_or(first).trim_end_matches('\r');
    assert_eq!(
        first.split(',').collect::<Vec<_>>(),
        header,
        "{}: header changed; update this test to the new columns",
        path.display()
    );
    let mut rows = Vec::new();
    for (i, line) in lines {
        let line_no = i + 1;
        let line = line.trim_end_matches('\r');
        assert!(!line.is_empty(), "{}:{line_no}: blank line inside the data", path.display());
        assert!(
            !line.contains('"'),
            "{}:{line_no}: quoted field {line:?}; this reader splits on ',' and cannot parse quotes",
            path.display()
        );
        let fields: Vec<String> = line.split(',').map(str::to_owned).collect();
        assert_eq!(
            fields.len(),
            header.len(),
            "{}:{line_no}: {line:?} has {} fields, header has {}",
            path.display(),
            fields.len(),
            header.len()
        );
        rows.push(Row { line: line_no, fields });
    }
    assert!(!rows.is_empty(), "{}: header but no data rows", path.display());
    rows
}
