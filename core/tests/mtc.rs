//! The MTC encoder against `core/tests/data/mtc_vectors.csv` (see its README.md, convention 8):
//! for every row, the full-frame SysEx byte for byte, and the eight quarter frames rebuilt into
//! the row's `mtc_*` fields by a reader written here from the MTC spec (§ "Quarter Frame
//! Messages"), not by the encoder. 50/59.94/60 rows need `half_rate` and are refused without it.

mod data;

use data::{MTC_VECTORS, read_csv};
use osc_timecode_core::FrameRate;
use osc_timecode_core::mtc::{MtcError, MtcFormat};

/// `[code, hh, mm, ss, ff]` from eight quarter frames `F1 0nnn dddd`, pieces 0..7 in order.
fn read_quarter_frames(qf: [[u8; 2]; 8]) -> [u8; 5] {
    let mut nibbles = [0u8; 8];
    for (i, [status, data]) in qf.into_iter().enumerate() {
        assert_eq!(status, 0xF1, "quarter frame status byte");
        assert_eq!(usize::from(data >> 4), i, "piece number in order");
        nibbles[i] = data & 0x0F;
    }
    let field = |lo: usize| nibbles[lo] | (nibbles[lo + 1] << 4);
    let hours = nibbles[6] | ((nibbles[7] & 0x01) << 4);
    [nibbles[7] >> 1, hours, field(4), field(2), field(0)]
}

#[test]
fn mtc_vectors_full_frames_and_quarter_frames() {
    let rows = read_csv(MTC_VECTORS.0, &MTC_VECTORS.1);
    let mut failures = Vec::new();
    for row in &rows {
        let f = &row.fields;
        let rate: FrameRate = f[0].parse().unwrap_or_else(|e| panic!("line {}: {e}", row.line));
        let frame: i64 = f[1].parse().unwrap_or_else(|e| panic!("line {}: {e}", row.line));
        let want: Vec<u8> = f[3..8].iter().map(|c| c.parse().expect("mtc field")).collect();
        let half = rate.nominal() > 30;
        if half {
            let refused = MtcFormat::new(rate, false);
            assert!(matches!(refused, Err(MtcError::RateNotCarried(e)) if e.rate == rate), "line {}", row.line);
        }
        let format = MtcFormat::new(rate, half).unwrap_or_else(|e| panic!("line {}: {e}", row.line));
        let sysex = format.full_frame(frame).iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(" ");
        let quarters = read_quarter_frames(format.time(frame).quarter_frames());
        if sysex != f[8] || quarters[..] != want[..] {
            failures.push(format!(
                "line {} ({} frame {frame}): full frame {sysex}, want {}; quarter frames {quarters:?}, want {want:?}",
                row.line, f[0], f[8]
            ));
        }
    }
    assert!(failures.is_empty(), "{} of {} rows differ:\n{}", failures.len(), rows.len(), failures.join("\n"));
}
