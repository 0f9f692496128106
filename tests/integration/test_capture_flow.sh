#!/usr/bin/env bash
# Flow control: with a memory budget far below the data, workers stage
# records, pause their partitions while staging is full and resume them
# exactly after the last record staged; the backup still equals kcat's
# dump record for record (nothing skipped, nothing twice), and peak RSS
# stays near the budget.
. "$(dirname "$0")/lib.sh"
require_cmd kcat

start_sandbox -n 3 --topic flow:8
"$KTAPE" gen -b "$BOOTSTRAP" -t flow --bytes 32M -n 100000000 --size 200-1000 --headers 2 --binary 5% >/dev/null
REPO=$T/repo
/usr/bin/time -f '%M' -o "$T/rss" "$KTAPE" -v -v capture -b "$BOOTSTRAP" -r "$REPO" -t flow -z zstd -l 3 \
	--memory 8M --threads 2 --admin-timeout 200ms --no-progress 2>"$T/capture.err" ||
	fail "capture failed: $(grep -v librdkafka "$T/capture.err" | tail -n 5)"
pauses=$(sed -n 's/.*staging full \([0-9]*\) times.*/\1/p' "$T/capture.err" | awk '{ s += $1 } END { print s + 0 }')
[ "$pauses" -gt 0 ] || fail "staging never filled with --memory 8M: the flow control was not exercised"
pass "staging filled $pauses times and the partitions were paused and resumed"
kcat_dump flow >"$T/flow.kcat"
"$KTAPE" cat -r "$REPO" -t flow >"$T/flow.ktape"
expect_same "$T/flow.kcat" "$T/flow.ktape"
rss_kb=$(tail -n 1 "$T/rss")
[ "$rss_kb" -lt $((96 * 1024)) ] || fail "peak RSS ${rss_kb} KiB with --memory 8M"
pass "peak RSS $((rss_kb / 1024)) MiB with --memory 8M"
