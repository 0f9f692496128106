#!/usr/bin/env bash
# ktape replay --pace original, judged from the outside with a wall clock
# and kcat (the exact arithmetic is unit-tested on a fake clock in
# tests/unit/test_replay_pacer.c; this is the coarse end-to-end check):
#   1. a 10 s window of recorded time at --speed 10 takes about 1 s, and
#      exactly the records inside the window arrive;
#   2. --max-gap shortens a 60 s silence to 0.5 s;
#   3. --timestamps shift moves the first timestamp to the replay's start
#      and keeps the gaps between records;
#   4. SIGINT stops a slow replay cleanly: exit 5, and the summary counts
#      exactly the records the target holds.
. "$(dirname "$0")/lib.sh"
require_cmd kcat jq

T0=1767225600000 # 2026-01-01T00:00:00Z, ktape gen's default start

now_ms() { date +%s%3N; }

# Number of records in TOPIC (from the beginning to the current end).
count() { kcat -C -b "$BOOTSTRAP" -t "$1" -e -q -f 'x\n' | wc -l; }

# Source: 600 records over 20 s of recorded time in three partitions, and a
# "bursts" topic of two 1 s bursts separated by 60 s of silence.
start_sandbox --topic events:3 --topic bursts:1
"$KTAPE" gen -b "$BOOTSTRAP" -t events -n 600 --keys 50 --ts-start "$T0" --ts-span 20s >/dev/null
"$KTAPE" gen -b "$BOOTSTRAP" -t bursts -n 100 --seed 2 --ts-start "$T0" --ts-span 1s >/dev/null
"$KTAPE" gen -b "$BOOTSTRAP" -t bursts -n 100 --seed 3 --ts-start $((T0 + 61000)) --ts-span 1s >/dev/null
# The records of the window [T0+5s, T0+15s), counted from the source.
FROM=$((T0 + 5000))
TO=$((T0 + 15000))
IN_WINDOW=$(kcat -C -b "$BOOTSTRAP" -t events -e -q -f '%T\n' |
	awk -v f="$FROM" -v t="$TO" '$1 >= f && $1 < t' | wc -l)
[ "$IN_WINDOW" -gt 200 ] || fail "the window should hold about 300 records, it holds $IN_WINDOW"
"$KTAPE" capture -b "$BOOTSTRAP" -r "$T/repo" -t events -t bursts >"$T/capture.out" 2>&1 ||
	fail "capture failed: $(cat "$T/capture.out")"
SRC_PID=$SANDBOX_PID
stop_sandbox "$SRC_PID"

start_sandbox --topic events:3 --topic bursts:1 --topic shifted.events:3

# 1. --speed 10 over a 10 s window.
start=$(now_ms)
"$KTAPE" replay -b "$BOOTSTRAP" -r "$T/repo" -t events --from-time "$FROM" --to-time "$TO" \
	--speed 10 --json >"$T/speed.json" || fail "replay --speed 10 failed"
elapsed=$(($(now_ms) - start))
note "10 s window at --speed 10: ${elapsed} ms"
# About 1 s: never faster than the timeline allows (the first record of
# the window is within 50 ms of its start), generous above for busy CI.
[ "$elapsed" -ge 900 ] || fail "--speed 10 replayed a 10 s window in ${elapsed} ms, faster than 1 s"
[ "$elapsed" -le 3000 ] || fail "--speed 10 replayed a 10 s window in ${elapsed} ms, far above 1 s"
pass "a 10 s window at --speed 10 took ${elapsed} ms"
[ "$(jq .records_acked "$T/speed.json")" -eq "$IN_WINDOW" ] ||
	fail "summary says $(jq .records_acked "$T/speed.json") records, the window holds $IN_WINDOW"
[ "$(count events)" -eq "$IN_WINDOW" ] || fail "target holds $(count events) records, want $IN_WINDOW"
pass "exactly the $IN_WINDOW records of the window arrived"

# 2. --max-gap: 1 s + 60 s of silence + 1 s at speed 1 becomes about 2.5 s.
start=$(now_ms)
"$KTAPE" replay -b "$BOOTSTRAP" -r "$T/repo" -t bursts --max-gap 500ms --json >"$T/gap.json" ||
	fail "replay --max-gap failed"
elapsed=$(($(now_ms) - start))
note "two 1 s bursts 60 s apart with --max-gap 500ms: ${elapsed} ms"
[ "$elapsed" -ge 2300 ] || fail "--max-gap 500ms took ${elapsed} ms, less than the 2.5 s of recorded traffic left"
[ "$elapsed" -le 6000 ] || fail "--max-gap 500ms took ${elapsed} ms: the 60 s silence was not capped"
[ "$(count bursts)" -eq 200 ] || fail "target holds $(count bursts) burst records, want 200"
pass "--max-gap shortened a 60 s silence (${elapsed} ms for both bursts)"

# 3. --timestamps shift into renamed topics: the first timestamp is the
# replay's start, and every gap between records is kept.
start=$(now_ms)
"$KTAPE" replay -b "$BOOTSTRAP" -r "$T/repo" -t events --prefix shifted. --pace none \
	--timestamps shift >/dev/null || fail "replay --timestamps shift failed"
kcat -C -b "$BOOTSTRAP" -t shifted.events -e -q -f '%p %o %T\n' | sort -k1,1n -k2,2n >"$T/shifted.ts"
"$KTAPE" cat -r "$T/repo" -t events 2>/dev/null | jq -r '"\(.partition) \(.offset) \(.ts)"' |
	sort -k1,1n -k2,2n >"$T/orig.ts"
[ "$(wc -l <"$T/shifted.ts")" -eq 600 ] || fail "shifted.events holds $(wc -l <"$T/shifted.ts") records, want 600"
# (bash arithmetic: awk's numbers lose precision on epoch milliseconds)
shift_ms=$(paste -d' ' "$T/orig.ts" "$T/shifted.ts" | while read -r _ _ a _ _ b; do echo $((b - a)); done | sort -u)
[ "$(echo "$shift_ms" | wc -l)" -eq 1 ] || fail "timestamps were not all shifted by one amount: $(echo "$shift_ms" | head -3)"
first_shifted=$(cut -d' ' -f3 "$T/shifted.ts" | sort -n | sed -n 1p)
drift=$((first_shifted - start))
[ "${drift#-}" -le 5000 ] || fail "the first shifted timestamp is ${drift} ms from the replay's start"
pass "--timestamps shift moved every timestamp by the same ${shift_ms} ms, the first to the replay's start"

# 4. SIGINT during a slow replay (20 s of traffic at speed 1).
before=$(count events)
"$KTAPE" replay -b "$BOOTSTRAP" -r "$T/repo" -t events --json >"$T/int.json" 2>"$T/int.err" &
pid=$!
# Interrupt once records are flowing (a loaded machine may take a while to
# start), and a moment later, mid-way through the 20 s of traffic.
flowing() { [ "$(count events)" -gt "$before" ]; }
wait_until 30 flowing
sleep 1
kill -INT "$pid"
rc=0
wait "$pid" || rc=$?
[ "$rc" -eq 5 ] || fail "an interrupted replay exited $rc, want 5: $(cat "$T/int.err")"
acked=$(jq .records_acked "$T/int.json")
after=$(count events)
[ "$acked" -gt 0 ] && [ "$acked" -lt 600 ] || fail "the interrupted replay sent $acked of 600 records"
[ $((after - before)) -eq "$acked" ] ||
	fail "the summary says $acked records were sent, the target gained $((after - before))"
pass "SIGINT stopped the replay after $acked records, exit 5, summary equal to the target"
