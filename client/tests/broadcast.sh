#!/bin/sh
# Runs serve and listen in three network namespaces joined by two veth pairs, for
# client/tests/broadcast.rs. Run it as `unshare -rnm sh broadcast.sh BIN OUT SECONDS
# INTERFACE` (INTERFACE: serve's --interface for the limited broadcast, s0 or its address):
# everything it creates lives in that unshare's namespaces and vanishes with it; nothing
# reaches the machine's own network. Addresses are TEST-NET-2 (198.51.100.0/24); no broadcast
# address is configured (`brd`), so the subnets' are the kernel's own.
#
#   nS (serve)  s0 198.51.100.1/25   ---- veth ----  l0 198.51.100.2/25    nL (listen)
#               s1 198.51.100.129/25 ---- veth ----  l1 198.51.100.130/25  nO (the other link)
#
# serve A, no --interface: to 198.51.100.127:5006 (s0's subnet's broadcast) and
# 198.51.100.255:5008 (s1's). serve B: to 255.255.255.255:5007 with --interface INTERFACE.
# Every listen binds 0.0.0.0 at its port (a socket bound to its unicast address gets no
# broadcast):
#   right.json          nL at 5006: serve A's directed broadcast on s0's link: locks
#   other.json          nO at 5006: nothing (it is s0's subnet's, routed there only)
#   control.json        nO at 5008: s1's subnet's broadcast: locks (nO's receivers work)
#   limited.json        nL at 5007: serve B's limited broadcast, sent from s0: locks
#   limited_other.json  nO at 5007: nothing (it left on s0 only)
set -eu
BIN=$1
OUT=$2
SECONDS_RUN=$3
INTERFACE=$4

mount -t tmpfs none /run
mkdir -p /run/netns
ip netns add nS
ip netns add nL
ip netns add nO
ip link add s0 netns nS type veth peer name l0 netns nL
ip link add s1 netns nS type veth peer name l1 netns nO
for ns in nS nL nO; do ip -n $ns link set lo up; done
ip -n nS addr add 198.51.100.1/25 dev s0
ip -n nS addr add 198.51.100.129/25 dev s1
ip -n nL addr add 198.51.100.2/25 dev l0
ip -n nO addr add 198.51.100.130/25 dev l1
for dev in s0 s1; do ip -n nS link set $dev up; done
ip -n nL link set l0 up
ip -n nO link set l1 up

# Always started in the background (`run_s ... &`): exec, so `$!` is the program itself and the
# final kill reaches it (a subshell's death would leave it running in its namespace).
run_s() { exec ip netns exec nS env OSC_TIMECODE_CONFIG=/nonexistent "$@"; }
run_l() { exec ip netns exec nL env OSC_TIMECODE_CONFIG=/nonexistent "$@"; }
run_o() { exec ip netns exec nO env OSC_TIMECODE_CONFIG=/nonexistent "$@"; }

# Receivers first, so the first frames find them.
run_l "$BIN" listen --bind 0.0.0.0:5006 --json --duration "$SECONDS_RUN" >"$OUT/right.json" 2>"$OUT/right.err" &
RIGHT=$!
run_o "$BIN" listen --bind 0.0.0.0:5006 --json --duration "$SECONDS_RUN" >"$OUT/other.json" 2>"$OUT/other.err" &
OTHER=$!
run_o "$BIN" listen --bind 0.0.0.0:5008 --json --duration "$SECONDS_RUN" >"$OUT/control.json" 2>"$OUT/control.err" &
CONTROL=$!
run_l "$BIN" listen --bind 0.0.0.0:5007 --json --duration "$SECONDS_RUN" \
    >"$OUT/limited.json" 2>"$OUT/limited.err" &
LIMITED=$!
run_o "$BIN" listen --bind 0.0.0.0:5007 --json --duration "$SECONDS_RUN" \
    >"$OUT/limited_other.json" 2>"$OUT/limited_other.err" &
LIMITED_OTHER=$!
sleep 0.5
run_s "$BIN" serve --to 198.51.100.127:5006 --to 198.51.100.255:5008 \
    --listen 127.0.0.1:5005 --allow 198.51.100.0/24 >"$OUT/serve_a.out" 2>"$OUT/serve_a.err" &
SERVE_A=$!
run_s "$BIN" serve --to 255.255.255.255:5007 --interface "$INTERFACE" \
    --listen 127.0.0.1:5015 --allow 198.51.100.0/24 >"$OUT/serve_b.out" 2>"$OUT/serve_b.err" &
SERVE_B=$!
wait $RIGHT $OTHER $CONTROL $LIMITED $LIMITED_OTHER || true
kill -TERM $SERVE_A $SERVE_B
wait $SERVE_A $SERVE_B || true
echo done >"$OUT/done"
