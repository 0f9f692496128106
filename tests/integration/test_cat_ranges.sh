#!/usr/bin/env bash
# ktape cat: partitions, offset and time windows (ISO-8601 or epoch ms)
# select exactly the records kcat sees in them; bytes that are not UTF-8
# come out as valid JSON ({"base64":...}); bad requests are refused with
# the documented exit codes.
. "$(dirname "$0")/lib.sh"
require_cmd kcat jq

start_sandbox -n 1 --topic ticks:3
# 3000 records over 3 partitions spread over 50 hours, 10% binary values;
# 4 KiB blocks so that windows cross block edges.
"$KTAPE" gen -b "$BOOTSTRAP" -t ticks -n 3000 --round-robin --seed 7 --ts-span 50h --binary 10% >/dev/null
REPO=$T/repo
"$KTAPE" capture -b "$BOOTSTRAP" -r "$REPO" -t ticks --admin-timeout 200ms --no-progress --block-size 4K \
	2>"$T/capture.err" || fail "capture failed: $(cat "$T/capture.err")"
kcat_dump ticks >"$T/all.kcat"

"$KTAPE" cat -r "$REPO" -t ticks >"$T/all.ktape"
jq -e . "$T/all.ktape" >/dev/null || fail "invalid JSON"
grep -q '"base64":' "$T/all.ktape" || fail "no binary value was written as base64"
expect_same "$T/all.kcat" "$T/all.ktape"

# One partition, an offset window.
# kcat writes non-UTF-8 bytes raw (jq would mangle them): filter its lines
# with awk on the leading fields instead.
awk -F'"partition":|,"offset":|,"tstype":' '$2 == 1 && $3 >= 100 && $3 < 250' "$T/all.kcat" >"$T/p1.kcat"
"$KTAPE" cat -r "$REPO" -t ticks -p 1 --from-offset 100 --to-offset 250 >"$T/p1.ktape"
[ "$(wc -l <"$T/p1.ktape")" -eq 150 ] || fail "offset window: $(wc -l <"$T/p1.ktape") records, expected 150"
expect_same "$T/p1.kcat" "$T/p1.ktape"

# A time window, given as ISO-8601 and as epoch milliseconds.
from=$(jq -s '[.[].ts] | sort | .[length / 3 | floor]' "$T/all.ktape")
to=$((from + 6 * 3600 * 1000))
awk -F',"ts":' -v f="$from" -v t="$to" '{ ts = $2 + 0 } ts >= f && ts < t' "$T/all.kcat" >"$T/win.kcat"
[ -s "$T/win.kcat" ] || fail "the time window is empty"
"$KTAPE" cat -r "$REPO" -t ticks --from-time "$from" --to-time "$to" >"$T/win.ms"
expect_same "$T/win.kcat" "$T/win.ms"
from_iso=$(date -u -d "@$((from / 1000)).$(printf '%03d' $((from % 1000)))" +%Y-%m-%dT%H:%M:%S.%3NZ)
to_iso=$(date -u -d "@$((to / 1000)).$(printf '%03d' $((to % 1000)))" +%Y-%m-%dT%H:%M:%S.%3NZ)
"$KTAPE" cat -r "$REPO" -t ticks --from-time "$from_iso" --to-time "$to_iso" >"$T/win.iso"
expect_same "$T/win.kcat" "$T/win.iso"
pass "time windows by epoch ms and ISO-8601 ($from_iso .. $to_iso)"

# A reader that stops early ends ktape cat quietly.
rc=0
"$KTAPE" cat -r "$REPO" -t ticks 2>"$T/pipe.err" | head -n 2 >/dev/null || rc=$?
[ ! -s "$T/pipe.err" ] || fail "a closed pipe printed: $(cat "$T/pipe.err")"
pass "a closed pipe ends cat quietly"

# Refusals.
expect_status 1 "$KTAPE" cat -r "$REPO" -t nosuch
expect_status 1 "$KTAPE" cat -r "$REPO" -t ticks -p 9
expect_status 1 "$KTAPE" cat -r "$REPO" -t ticks -s 20200101T000000000Z-00000000
expect_status 2 "$KTAPE" cat -r "$REPO" -t ticks --from-time yesterday
expect_status 2 "$KTAPE" cat -r "$REPO"
pass "unknown topic, partition or snapshot exit 1; bad flags exit 2"
