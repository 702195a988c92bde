"""Reads MTC bytes with mido (PyPI, MIT; not written here) and checks them against the MIDI Time
Code spec, independently of the Rust encoder. Used by core/tests/mtc_interop.rs.

stdin: a header line `num den sample_rate offset_frames step begin end`, then one line per MIDI
message: `sample hex-bytes` (the timeline sample it is due at). Checks, failing with a message
on stderr and exit code 1:
- every message parses with mido.Parser as one `quarter_frame` or one `sysex` (full frame);
- the quarter frames are exactly those due in [begin, end): quarter q of the MTC frame that
  starts at our frame n lies at start(n) + floor(q * len / 4), start(n) = ceil((n - offset) *
  den * sample_rate / num), len the MTC frame's length (step = 2 our frames in half-rate mode),
  with piece 4 * (m mod 2) + q for MTC frame m;
stdout: `seq <sample of piece 0> <hh> <mm> <ss> <ff> <rate code>` for each complete 8-piece
sequence (reassembled from mido's frame_type/frame_value), and `full <sample> <hh> <mm> <ss>
<ff> <rate code>` for each full frame; the Rust side compares those with the labels.
"""
import sys

import mido


def ceil_div(a, b):
    return -((-a) // b)


def main():
    lines = sys.stdin.read().split("\n")
    num, den, sr, offset, step, begin, end = map(int, lines[0].split())
    messages = []
    for line in lines[1:]:
        if not line.strip():
            continue
        sample, data = line.split(" ", 1)
        parser = mido.Parser()
        parser.feed(bytes.fromhex(data))
        parsed = list(parser)
        if len(parsed) != 1:
            sys.exit(f"{data}: mido read {parsed}, not one message")
        messages.append((int(sample), parsed[0]))

    def start(n):
        return ceil_div((n - offset) * den * sr, num)

    # The quarter frames due in [begin, end), from the spec's timing rule.
    first_m = ((begin * num // (den * sr)) + offset) // step - 1
    want = []
    m = first_m
    while True:
        s0 = start(m * step)
        if s0 >= end:
            break
        length = start((m + 1) * step) - s0
        for q in range(4):
            at = s0 + q * length // 4
            if begin <= at < end:
                want.append((at, 4 * (m % 2) + q))
        m += 1

    got = []
    sequence = None
    for sample, msg in messages:
        if msg.type == "quarter_frame":
            got.append((sample, msg.frame_type))
            if msg.frame_type == 0:
                sequence = (sample, [None] * 8)
            if sequence is not None:
                sequence[1][msg.frame_type] = msg.frame_value
                if msg.frame_type == 7:
                    v = sequence[1]
                    if None not in v:
                        ff = v[0] | (v[1] << 4)
                        ss = v[2] | (v[3] << 4)
                        mm = v[4] | (v[5] << 4)
                        hh = v[6] | ((v[7] & 1) << 4)
                        print(f"seq {sequence[0]} {hh} {mm} {ss} {ff} {v[7] >> 1}")
                    sequence = None
        elif msg.type == "sysex":
            d = list(msg.data)
            if d[:4] != [0x7F, 0x7F, 0x01, 0x01] or len(d) != 8:
                sys.exit(f"sysex {d} is not a full-frame message to all devices")
            print(f"full {sample} {d[4] & 0x1F} {d[5]} {d[6]} {d[7]} {d[4] >> 5}")
        else:
            sys.exit(f"unexpected message {msg}")
    if got != want:
        diff = [(g, w) for g, w in zip(got, want) if g != w][:5]
        sys.exit(f"quarter frames (sample, piece): {len(got)} sent, {len(want)} due; first differences {diff}")
    print(f"ok {len(got)}")


if __name__ == "__main__":
    main()
