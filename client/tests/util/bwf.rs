//! Reading a Broadcast Wave file back with Python's `struct` (not our writer's code): the RIFF
//! chunks, the format, the bext TimeReference and the samples. Shared by the LTC file tests
//! (`ltc_wav.rs`, `outputs.rs`).

#![allow(dead_code, reason = "each test binary uses its part")]

use std::path::Path;
use std::process::Command;

/// Python's `struct` on the RIFF chunks: (format tag, channels, sample rate, bits, bext
/// TimeReference, the data chunk's samples as f32).
pub fn read_back(path: &Path) -> (u16, u16, u32, u16, u64, Vec<f32>) {
    const SCRIPT: &str = r#"
import struct, sys
data = open(sys.argv[1], 'rb').read()
riff, size, wave = struct.unpack('<4sI4s', data[:12])
assert riff == b'RIFF' and wave == b'WAVE' and size == len(data) - 8, (riff, size, len(data))
pos, chunks = 12, {}
while pos + 8 <= len(data):
    cid, clen = struct.unpack('<4sI', data[pos:pos + 8])
    chunks[cid] = data[pos + 8:pos + 8 + clen]
    pos += 8 + clen + (clen & 1)
tag, channels, rate, _, _, bits = struct.unpack('<HHIIHH', chunks[b'fmt '][:16])
low, high = struct.unpack('<II', chunks[b'bext'][338:346])
open(sys.argv[2], 'wb').write(chunks[b'data'])
print(tag, channels, rate, bits, low + (high << 32))
"#;
    let raw = path.with_extension("raw");
    let out = Command::new("python3").args(["-c", SCRIPT]).arg(path).arg(&raw).output().expect("python3 runs");
    assert!(out.status.success(), "the RIFF reader failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let f: Vec<&str> = text.split_whitespace().collect();
    let bytes = std::fs::read(&raw).expect("data");
    let _ = std::fs::remove_file(&raw);
    let samples = bytes.chunks(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect();
    (
        f[0].parse().unwrap(),
        f[1].parse().unwrap(),
        f[2].parse().unwrap(),
        f[3].parse().unwrap(),
        f[4].parse().unwrap(),
        samples,
    )
}

/// The bext Description, as Python's `struct` reads it (zero padding removed).
pub fn description(path: &Path) -> String {
    const SCRIPT: &str = r#"
import struct, sys
data = open(sys.argv[1], 'rb').read()
pos = 12
while pos + 8 <= len(data):
    cid, clen = struct.unpack('<4sI', data[pos:pos + 8])
    if cid == b'bext':
        print(data[pos + 8:pos + 8 + 256].rstrip(b'\0').decode('ascii'))
        break
    pos += 8 + clen + (clen & 1)
"#;
    let out = Command::new("python3").args(["-c", SCRIPT]).arg(path).output().expect("python3 runs");
    assert!(out.status.success(), "the RIFF reader failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8").trim_end().to_owned()
}
