"""Records MIDI time code from a JACK MIDI port with the instant JACK places each message at.

Section 10 of the benchmark (tests/src/bench/stage.rs) runs it next to `osc-timecode listen
--mtc jack:PORT`. It is the independent recorder: JACK-Client (PyPI) registers an input port,
its process callback takes each event's frame (`jack_last_frame_time` + the event's offset in
the period) and converts it to JACK's clock with libjack's `jack_frames_to_time` (µs); the main
thread measures the wall clock minus JACK's clock every 100 ms (`time.time_ns()` bracketed by two
`jack_get_time()`), so each event gets a wall time in ns since the Unix epoch, the clock the
chase and serve's timetags use. mido (PyPI) parses the bytes.

NOTE: JACK's clock is not necessarily CLOCK_MONOTONIC: jackd2 on Linux reads
      CLOCK_MONOTONIC_RAW (on the bench machine 263 ms apart from CLOCK_MONOTONIC), so the offset
      is measured against `jack_get_time` itself.

Usage: JACK_DEFAULT_SERVER=NAME python3 mtc_jack_record.py CLIENT_NAME
Prints `ready PORT` once the port is live, records until its standard input closes, then prints
one line per message and exits 0:

    quarter WALL_NS PIECE VALUE     (an MTC quarter frame: mido's frame_type and frame_value)
    full WALL_NS HH MM SS FF CODE   (an MTC full frame)
    other WALL_NS HEX               (anything else)
"""

import ctypes
import ctypes.util
import sys
import threading
import time

import jack
import mido

libjack = ctypes.CDLL(ctypes.util.find_library("jack") or "libjack.so.0")
libjack.jack_frames_to_time.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
libjack.jack_frames_to_time.restype = ctypes.c_uint64
libjack.jack_get_time.argtypes = []
libjack.jack_get_time.restype = ctypes.c_uint64


def wall_minus_jack():
    """(JACK's clock in ns, wall clock minus JACK's clock in ns), from the tightest of 20
    brackets of `time.time_ns()` between two readings of JACK's clock."""
    best = None
    for _ in range(20):
        a = libjack.jack_get_time() * 1000
        w = time.time_ns()
        b = libjack.jack_get_time() * 1000
        if best is None or b - a < best[0]:
            best = (b - a, (a + b) // 2, w - (a + b) // 2)
    return best[1], best[2]


def main():
    name = sys.argv[1]
    client = jack.Client(name, no_start_server=True)
    port = client.midi_inports.register("in")
    ptr = ctypes.c_void_p(int(jack._ffi.cast("uintptr_t", client._ptr)))
    events = []

    @client.set_process_callback
    def process(frames):
        base = client.last_frame_time
        for offset, data in port.incoming_midi_events():
            frame = (base + offset) & 0xFFFFFFFF
            events.append((libjack.jack_frames_to_time(ptr, frame), bytes(data)))

    offsets = [wall_minus_jack()]
    client.activate()
    print("ready", port.name, flush=True)

    done = threading.Event()

    def wait_for_eof():
        sys.stdin.read()
        done.set()

    threading.Thread(target=wait_for_eof, daemon=True).start()
    while not done.wait(0.1):
        offsets.append(wall_minus_jack())
    offsets.append(wall_minus_jack())
    client.deactivate()
    client.close()

    k = 0
    for usecs, data in events:
        at = usecs * 1000
        # The offset measured nearest the event (the wall clock may be slewed).
        while k + 1 < len(offsets) and abs(offsets[k + 1][0] - at) <= abs(offsets[k][0] - at):
            k += 1
        wall = at + offsets[k][1]
        parser = mido.Parser()
        parser.feed(data)
        msgs = list(parser)
        m = msgs[0] if len(msgs) == 1 else None
        if m is not None and m.type == "quarter_frame":
            print("quarter", wall, m.frame_type, m.frame_value)
        elif m is not None and m.type == "sysex" and len(m.data) == 8 and list(m.data[:4]) == [0x7F, 0x7F, 1, 1]:
            hh, mm, ss, ff = m.data[4:8]
            print("full", wall, hh & 0x1F, mm, ss, ff, hh >> 5)
        else:
            print("other", wall, data.hex())
    sys.stdout.flush()


if __name__ == "__main__":
    main()
