#!/usr/bin/env python3
"""Probes for client/tests/multicast.rs, run inside the test's network namespace.

  multicast_probe.py ttl GROUP PORT SECONDS    the TTL and source of the first datagram to
                                               GROUP:PORT (a raw socket sees the IP header)
  multicast_probe.py plain PORT SECONDS        datagrams a plain socket on 0.0.0.0:PORT gets
                                               without joining anything (the negative control
                                               for IP_MULTICAST_ALL)
Prints one line of JSON.
"""
import json
import socket
import struct
import sys
import time


def ttl(group, port, seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
    s.settimeout(0.2)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            packet, _ = s.recvfrom(65535)
        except socket.timeout:
            continue
        ihl = (packet[0] & 0x0F) * 4
        src, dst = socket.inet_ntoa(packet[12:16]), socket.inet_ntoa(packet[16:20])
        (dport,) = struct.unpack("!H", packet[ihl + 2 : ihl + 4])
        if dst == group and dport == port:
            return {"ttl": packet[8], "source": src}
    return {"ttl": None, "source": None}


def plain(port, seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    s.settimeout(0.2)
    count, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            s.recvfrom(65535)
            count += 1
        except socket.timeout:
            pass
    return {"received": count}


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "ttl":
        out = ttl(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    elif mode == "plain":
        out = plain(int(sys.argv[2]), float(sys.argv[3]))
    else:
        sys.exit(f"unknown mode {mode}")
    print(json.dumps(out), flush=True)
