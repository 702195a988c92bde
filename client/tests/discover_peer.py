"""The independent DNS-SD peer of client/tests/discover.rs: python-zeroconf, pinned in .ci/run.

Run only inside the network namespace the test creates (loopback only, nothing leaves it).

  discover_peer.py browse SECONDS    browses _osc._udp for SECONDS, prints one JSON object:
                                     {fullname: {"port", "addresses", "txt"}} of what is there
  discover_peer.py register SECONDS  registers two services on 127.0.0.1 (a receiver speaking
                                     osc-timecode/1 at 9001, a TXT-less OSC service at 9002),
                                     prints "registered", waits SECONDS, withdraws them
"""
import json
import socket
import sys
import time

from zeroconf import InterfaceChoice, IPVersion, ServiceBrowser, ServiceInfo, ServiceListener, Zeroconf

TYPE = "_osc._udp.local."


class Found(ServiceListener):
    def __init__(self):
        self.found = {}

    def add_service(self, zc, type_, name):
        info = zc.get_service_info(type_, name, timeout=3000)
        if info is None:
            return
        txt = {k.decode(): (v.decode() if v is not None else None) for k, v in info.properties.items()}
        self.found[name] = {"port": info.port, "addresses": sorted(info.parsed_addresses()), "txt": txt}

    def update_service(self, zc, type_, name):
        self.add_service(zc, type_, name)

    def remove_service(self, zc, type_, name):
        self.found.pop(name, None)


def main():
    mode, seconds = sys.argv[1], float(sys.argv[2])
    zc = Zeroconf(interfaces=InterfaceChoice.All, ip_version=IPVersion.V4Only)
    if mode == "browse":
        listener = Found()
        ServiceBrowser(zc, TYPE, listener)
        time.sleep(seconds)
        zc.close()
        print(json.dumps(listener.found, sort_keys=True))
    elif mode == "register":
        loopback = [socket.inet_aton("127.0.0.1")]
        infos = [
            ServiceInfo(TYPE, "Stage Right Receiver." + TYPE, addresses=loopback, port=9001,
                        properties={"txtvers": "1", "role": "receiver", "proto": "osc-timecode/1"},
                        server="peer.local."),
            ServiceInfo(TYPE, "TouchOSC Bridge." + TYPE, addresses=loopback, port=9002, properties={},
                        server="peer.local."),
        ]
        for info in infos:
            zc.register_service(info)
        print("registered", flush=True)
        time.sleep(seconds)
        for info in infos:
            zc.unregister_service(info)
        zc.close()
    else:
        sys.exit("usage: discover_peer.py browse|register SECONDS")


if __name__ == "__main__":
    main()
