#!/bin/sh
# Runs serve and listen in two network namespaces joined by two veth pairs, for
# client/tests/multicast.rs. Run it as `unshare -rnm sh multicast.sh BIN OUT PROBE SECONDS
# INTERFACE [TTL]` (INTERFACE: serve's --interface, s0 or its address; TTL: serve's --ttl, none
# if absent): everything
# it creates lives in that unshare's namespaces and vanishes with it; nothing reaches the
# machine's own network. Addresses are TEST-NET-2 (198.51.100.0/24).
#
#   nS (serve)  s0 198.51.100.1/25   ---- veth ----  l0 198.51.100.2/25    nL (listen)
#               s1 198.51.100.129/25 ---- veth ----  l1 198.51.100.130/25
#
# serve sends to 239.192.50.6 ports 5006 and 5007 (and ff02::6a port 5008) on s0 only:
#   right.json  listen joined on l0 at 5006: locks
#   wrong.json  listen joined on l1 at 5007: nothing (the group arrives on l0, which another
#               socket joined; IP_MULTICAST_ALL off keeps it out)
#   plain.json  a plain socket on 0.0.0.0:5007 (no join, IP_MULTICAST_ALL on): the control
#   ttl.json    the IP TTL and source of serve's datagrams at 5006, read with a raw socket
#   v6.json     listen joined to [ff02::6a]:5008 on l0: locks
set -eu
BIN=$1
OUT=$2
PROBE=$3
SECONDS_RUN=$4
INTERFACE=$5
TTL_ARGS=
if [ -n "${6:-}" ]; then TTL_ARGS="--ttl $6"; fi

mount -t tmpfs none /run
mkdir -p /run/netns
ip netns add nS
ip netns add nL
ip link add s0 netns nS type veth peer name l0 netns nL
ip link add s1 netns nS type veth peer name l1 netns nL
for ns in nS nL; do
    ip -n $ns link set lo up
    ip netns exec $ns sysctl -q -w net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
done
# No generated link-local addresses: each side has the one given here, nothing appears later.
for dev in s0 s1; do ip -n nS link set $dev addrgenmode none; done
for dev in l0 l1; do ip -n nL link set $dev addrgenmode none; done
ip -n nS addr add 198.51.100.1/25 dev s0
ip -n nS addr add 198.51.100.129/25 dev s1
ip -n nS addr add fe80::1/64 dev s0 nodad
ip -n nL addr add 198.51.100.2/25 dev l0
ip -n nL addr add 198.51.100.130/25 dev l1
ip -n nL addr add fe80::2/64 dev l0 nodad
for dev in s0 s1; do ip -n nS link set $dev up; done
for dev in l0 l1; do ip -n nL link set $dev up; done

# Always started in the background (`run_s ... &`): exec, so `$!` is the program itself and the
# final kill reaches it (a subshell's death would leave it running in its namespace).
run_s() { exec ip netns exec nS env OSC_TIMECODE_CONFIG=/nonexistent "$@"; }
run_l() { exec ip netns exec nL env OSC_TIMECODE_CONFIG=/nonexistent "$@"; }

# Receivers first, so the first frames find them.
run_l "$BIN" listen --bind 239.192.50.6:5006 --interface l0 --json --duration "$SECONDS_RUN" \
    >"$OUT/right.json" 2>"$OUT/right.err" &
RIGHT=$!
run_l "$BIN" listen --bind 239.192.50.6:5007 --interface l1 --json --duration "$SECONDS_RUN" \
    >"$OUT/wrong.json" 2>"$OUT/wrong.err" &
WRONG=$!
run_l "$BIN" listen --bind '[ff02::6a]:5008' --interface l0 --json --duration "$SECONDS_RUN" \
    >"$OUT/v6.json" 2>"$OUT/v6.err" &
V6=$!
run_l python3 "$PROBE" ttl 239.192.50.6 5006 "$SECONDS_RUN" >"$OUT/ttl.json" 2>"$OUT/ttl.err" &
TTL=$!
sleep 0.5
run_s "$BIN" serve --to 239.192.50.6:5006 --to 239.192.50.6:5007 --to '[ff02::6a]:5008' \
    --interface "$INTERFACE" $TTL_ARGS --listen 127.0.0.1:5005 --allow 198.51.100.0/24 --allow fe80::/10 \
    >"$OUT/serve.out" 2>"$OUT/serve.err" &
SERVE=$!
wait $RIGHT $WRONG $V6 $TTL || true
# The control binds 5007 once the wrong listen has ended (neither asks to share the port), while
# a listen at 5006 keeps nL's membership of the group on l0.
run_l python3 "$PROBE" plain 5007 1.5 >"$OUT/plain.json" 2>"$OUT/plain.err" &
PLAIN=$!
run_l "$BIN" listen --bind 239.192.50.6:5006 --interface l0 --json --duration 2 >/dev/null 2>&1 &
KEEP=$!
wait $PLAIN $KEEP || true
kill -TERM $SERVE
wait $SERVE || true
echo done >"$OUT/done"
