#!/usr/bin/env bash
# ktape replay --max-rate / --max-bytes-rate, judged with a wall clock and
# kcat (the token bucket itself is unit-tested on a fake clock in
# tests/unit/test_replay_ratelimit.c; this is the coarse end-to-end check):
# --max-rate R over N records takes about N/R seconds, --max-bytes-rate B
# over the bytes sent takes about bytes/B, and every record arrives; and
# --loop 3 sends each record three times, each pass shifted in time.
. "$(dirname "$0")/lib.sh"
require_cmd kcat jq

now_ms() { date +%s%3N; }
count() { kcat -C -b "$BOOTSTRAP" -t "$1" -e -q -f 'x\n' | wc -l; }

start_sandbox --topic events:3
"$KTAPE" gen -b "$BOOTSTRAP" -t events -n 1000 --keys 100 --size 150-250 >/dev/null
"$KTAPE" capture -b "$BOOTSTRAP" -r "$T/repo" -t events >"$T/capture.out" 2>&1 ||
	fail "capture failed: $(cat "$T/capture.out")"
stop_sandbox
start_sandbox --topic events:3 --topic bytes.events:3 --topic loop.events:3

# 1000 records at 500/s: the bucket starts with a twentieth of a second's
# worth, so (1000 - 25) / 500 = 1.95 s.
start=$(now_ms)
"$KTAPE" replay -b "$BOOTSTRAP" -r "$T/repo" --pace none --max-rate 500 --json >"$T/rate.json" ||
	fail "replay --max-rate failed"
elapsed=$(($(now_ms) - start))
note "1000 records at --max-rate 500: ${elapsed} ms"
[ "$elapsed" -ge 1850 ] || fail "--max-rate 500 sent 1000 records in ${elapsed} ms, faster than the limit"
[ "$elapsed" -le 4500 ] || fail "--max-rate 500 took ${elapsed} ms for 1000 records, far above 1.95 s"
[ "$(count events)" -eq 1000 ] || fail "target holds $(count events) records, want 1000"
pass "--max-rate 500 sent 1000 records in ${elapsed} ms (1.95 s expected)"

# The same records limited to 100 KiB/s of key, value and header bytes.
start=$(now_ms)
"$KTAPE" replay -b "$BOOTSTRAP" -r "$T/repo" --prefix bytes. --pace none --max-bytes-rate 100K \
	--json >"$T/bytes.json" || fail "replay --max-bytes-rate failed"
elapsed=$(($(now_ms) - start))
bytes=$(jq .bytes_sent "$T/bytes.json")
want=$(((bytes - 102400 / 20) * 1000 / 102400))
note "$bytes bytes at --max-bytes-rate 100K: ${elapsed} ms (${want} ms expected)"
[ "$elapsed" -ge $((want * 95 / 100)) ] || fail "--max-bytes-rate 100K took ${elapsed} ms, less than ${want} ms"
[ "$elapsed" -le $((want * 2 + 1500)) ] || fail "--max-bytes-rate 100K took ${elapsed} ms, far above ${want} ms"
[ "$(count bytes.events)" -eq 1000 ] || fail "target holds $(count bytes.events) records, want 1000"
pass "--max-bytes-rate 100K sent $bytes bytes in ${elapsed} ms (${want} ms expected)"

# --loop 3 as fast as possible: every record three times, each pass in the
# same partitions and later in time than the one before.
"$KTAPE" replay -b "$BOOTSTRAP" -r "$T/repo" --prefix loop. --pace none --loop 3 --json \
	>"$T/loop.json" || fail "replay --loop 3 failed"
[ "$(jq .records_acked "$T/loop.json")" -eq 3000 ] || fail "--loop 3 sent $(jq .records_acked "$T/loop.json") records"
kcat -C -b "$BOOTSTRAP" -t loop.events -e -q -f '%p %o %k %T\n' | sort -k1,1n -k2,2n >"$T/loop.dump"
[ "$(wc -l <"$T/loop.dump")" -eq 3000 ] || fail "loop.events holds $(wc -l <"$T/loop.dump") records, want 3000"
kcat -C -b "$BOOTSTRAP" -t events -e -q -f '%p %k\n' | sort | uniq -c | awk '{ print $1 * 3, $2, $3 }' >"$T/once"
awk '{ print $1, $3 }' "$T/loop.dump" | sort | uniq -c | awk '{ print $1, $2, $3 }' >"$T/thrice"
cmp -s <(sort "$T/once") <(sort "$T/thrice") || fail "--loop 3 did not send each partition's keys three times"
# Pass k + 1 of a partition repeats pass k's records shifted by one and the
# same positive amount of time.
shifts=$(awk '{ ts[$1, $2] = $4; n[$1]++ }
	END { for (p in n) { k = n[p] / 3; for (o = 0; o < 2 * k; o++) printf "%.0f\n", ts[p, o + k] - ts[p, o] } }' \
	"$T/loop.dump" | sort -u)
[ "$(echo "$shifts" | wc -l)" -eq 1 ] && [ "$shifts" -gt 0 ] ||
	fail "--loop passes are not shifted by one positive amount: $(echo "$shifts" | tr '\n' ' ')"
pass "--loop 3 sent every record three times into its partition, each pass ${shifts} ms after the last"

# Bad rates are usage errors before anything is sent.
expect_status 2 "$KTAPE" replay -b "$BOOTSTRAP" -r "$T/repo" --max-rate 0
expect_status 2 "$KTAPE" replay -b "$BOOTSTRAP" -r "$T/repo" --max-bytes-rate fast
expect_status 2 "$KTAPE" replay -b "$BOOTSTRAP" -r "$T/repo" --speed -1
pass "bad rates and speeds are refused with exit 2"

# A --stats-file that could never be written is refused before anything is
# sent, not reported after the whole replay.
before=$(count events)
expect_status 2 "$KTAPE" replay -b "$BOOTSTRAP" -r "$T/repo" --pace none \
	--stats-file "$T/missing/dir/replay.prom" 2>"$T/stats.err"
grep -q "cannot write into directory $T/missing/dir" "$T/stats.err" ||
	fail "the refusal does not name the directory: $(cat "$T/stats.err")"
[ "$(count events)" -eq "$before" ] || fail "a replay with an unwritable --stats-file sent records"
pass "--stats-file into a missing directory: exit 2 and nothing sent"
