#!/usr/bin/env python3
"""The benchmarks' baseline master: timecode sent the way such tools are usually written.

python-osc, and `while True: send; time.sleep(1 / fps)`: each frame goes out one sleep after the
previous send, so every frame is late by the send, the sleep's overshoot and the loop's own time,
and the lateness adds up (drift). `cargo xtask bench` runs it beside the plugin and
`osc-timecode serve`, into the same receiver, and reports the ratio (BENCHMARKS.md).

The message is a valid `/sync/timecode` (docs/PROTOCOL.md, non-drop-frame labels only), sent bare,
without a bundle or timetag, as such tools do. Loopback only.
"""

import argparse
import ipaddress
import time

from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.udp_client import SimpleUDPClient


def timecode(frame, num, den, seq, first):
    """The /sync/timecode message for `frame` at num/den fps (non-drop-frame)."""
    nominal = -(-num // den)  # 24, 25, 30, 50, 60: the label counts at the nominal rate
    ff = frame % nominal
    seconds = frame // nominal
    hh, mm, ss = (seconds // 3600) % 24, (seconds // 60) % 60, seconds % 60
    msg = OscMessageBuilder("/sync/timecode")
    msg.add_arg(f"{hh:02}:{mm:02}:{ss:02}:{ff:02}", "s")
    for value in (hh, mm, ss, ff, num, den, 0):
        msg.add_arg(value, "i")
    msg.add_arg(frame, "h")
    msg.add_arg(1, "i")  # playing
    msg.add_arg(seq, "h")
    msg.add_arg(1 if first else 0, "i")  # jump
    msg.add_arg(0, "i")  # loop
    return msg.build()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5006)
    parser.add_argument("--num", type=int, default=25, help="frame rate numerator")
    parser.add_argument("--den", type=int, default=1, help="frame rate denominator")
    parser.add_argument("--frames", type=int, default=0, help="stop after this many frames (0: never)")
    args = parser.parse_args()
    if not ipaddress.ip_address(args.host).is_loopback:
        parser.error("the benchmark baseline only sends to loopback")
    client = SimpleUDPClient(args.host, args.port)
    fps = args.num / args.den
    frame = 0
    while True:
        client.send(timecode(frame, args.num, args.den, frame, frame == 0))
        frame += 1
        if args.frames and frame >= args.frames:
            break
        time.sleep(1 / fps)


if __name__ == "__main__":
    main()
