"""Decodes LTC with x42's libltc (Debian `libltc11`, 1.3.2) through ctypes: a decoder nobody here
wrote. Standard library only.

Usage: ltc_decode.py SAMPLES.f32 SAMPLE_RATE FPS_NUM FPS_DEN
SAMPLES.f32 holds mono float32 little-endian samples. Prints one line per decoded frame:
    LABEL DF OFF_START OFF_END REVERSE VOLUME_DBFS BYTES_HEX SAMPLE_MIN SAMPLE_MAX PEAK_DBFS
LABEL from libltc's ltc_frame_to_time (`;` before the frames when the drop-frame bit is set),
DF the drop-frame bit as libltc parsed it, OFF_START/OFF_END libltc's sample positions of the
word's first and last sample, BYTES_HEX the 10 bytes of libltc's LTCFrame (bit 0 first),
SAMPLE_MIN/MAX libltc's envelope on its 8-bit scale (128 is silence). VOLUME_DBFS is libltc's
estimate from that envelope, which decays by 1/16 a sample and is read at the next word's first
edge, so it reads about 4 dB low for a square wave at 48 kHz (0 dBFS reads -3.89): PEAK_DBFS, the
largest |sample| of the word's span in the file, is the level to check.
"""

import ctypes
import ctypes.util
import math
import sys


class LTCFrameExt(ctypes.Structure):
    # ltc.h (libltc 1.3.2): LTCFrame (80 bits of unsigned int bitfields), ltc_off_t off_start,
    # off_end, int reverse, float biphase_tics[80], unsigned char sample_min, sample_max (0..255),
    # double volume (dBFS).
    # off_start is 8-byte aligned, so the frame's padding does not matter.
    _fields_ = [
        ("ltc", ctypes.c_uint8 * 10),
        ("off_start", ctypes.c_longlong),
        ("off_end", ctypes.c_longlong),
        ("reverse", ctypes.c_int),
        ("biphase_tics", ctypes.c_float * 80),
        ("sample_min", ctypes.c_ubyte),
        ("sample_max", ctypes.c_ubyte),
        ("volume", ctypes.c_double),
    ]


class SMPTETimecode(ctypes.Structure):
    _fields_ = [
        ("timezone", ctypes.c_char * 6),
        ("years", ctypes.c_ubyte),
        ("months", ctypes.c_ubyte),
        ("days", ctypes.c_ubyte),
        ("hours", ctypes.c_ubyte),
        ("mins", ctypes.c_ubyte),
        ("secs", ctypes.c_ubyte),
        ("frame", ctypes.c_ubyte),
    ]


def load():
    for name in ("libltc.so.11", ctypes.util.find_library("ltc")):
        if not name:
            continue
        try:
            return ctypes.CDLL(name)
        except OSError:
            pass
    sys.exit("libltc is not installed (apt-get install libltc11)")


def main():
    path, sample_rate, num, den = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    lib = load()
    lib.ltc_decoder_create.restype = ctypes.c_void_p
    lib.ltc_decoder_create.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.ltc_decoder_write_float.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float), ctypes.c_size_t, ctypes.c_longlong]
    lib.ltc_decoder_read.restype = ctypes.c_int
    lib.ltc_decoder_read.argtypes = [ctypes.c_void_p, ctypes.POINTER(LTCFrameExt)]
    lib.ltc_frame_to_time.argtypes = [ctypes.POINTER(SMPTETimecode), ctypes.c_void_p, ctypes.c_int]
    lib.ltc_decoder_free.argtypes = [ctypes.c_void_p]

    with open(path, "rb") as f:
        data = f.read()
    count = len(data) // 4
    samples = (ctypes.c_float * count).from_buffer_copy(data[: count * 4])
    apv = sample_rate * den // num  # audio samples per video frame, as libltc wants it
    decoder = lib.ltc_decoder_create(apv, 64)
    frame = LTCFrameExt()
    stime = SMPTETimecode()
    chunk = 1024
    out = []
    for start in range(0, count, chunk):
        n = min(chunk, count - start)
        ptr = ctypes.cast(ctypes.byref(samples, start * 4), ctypes.POINTER(ctypes.c_float))
        lib.ltc_decoder_write_float(decoder, ptr, n, start)
        while lib.ltc_decoder_read(decoder, ctypes.byref(frame)):
            lib.ltc_frame_to_time(ctypes.byref(stime), ctypes.addressof(frame.ltc), 0)
            df = (frame.ltc[1] >> 2) & 1
            sep = ";" if df else ":"
            label = f"{stime.hours:02}:{stime.mins:02}:{stime.secs:02}{sep}{stime.frame:02}"
            span = samples[max(frame.off_start, 0) : frame.off_end + 1]
            peak = max((abs(v) for v in span), default=0.0)
            peak_dbfs = 20 * math.log10(peak) if peak > 0 else float("-inf")
            out.append(
                f"{label} {df} {frame.off_start} {frame.off_end} {frame.reverse} "
                f"{frame.volume:.2f} {bytes(frame.ltc).hex()} {frame.sample_min} {frame.sample_max} {peak_dbfs:.2f}"
            )
    lib.ltc_decoder_free(decoder)
    print("\n".join(out))


main()
