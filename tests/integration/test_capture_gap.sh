#!/usr/bin/env bash
# Retention that deletes records before they were captured: the next
# capture records the hole [previous end, log start) in the manifest, says
# so loudly, exits 4, and exports the count in --stats-file; the capture
# after that, with nothing lost, exits 0 again.
. "$(dirname "$0")/lib.sh"
require_cmd kcat jq

start_sandbox -n 1 --topic churn:1 --topic calm:1
REPO=$T/repo
STATS=$T/ktape.prom

capture() {
	"$KTAPE" capture -b "$BOOTSTRAP" -r "$REPO" -t churn -t calm --admin-timeout 200ms --no-progress \
		--stats-file "$STATS" --json "$@"
}

seq 1 10 | kcat_produce churn
seq 1 5 | kcat_produce calm
capture >"$T/first.json" 2>"$T/first.err" || fail "first capture failed: $(cat "$T/first.err")"
grep -q '^ktape_capture_gap_offsets_total{repo=".*"} 0$' "$STATS" || fail "stats: $(cat "$STATS")"
first_success=$(sed -n 's/^ktape_capture_last_success_timestamp_seconds{.*} //p' "$STATS")
[ "$first_success" -gt 0 ] || fail "no last success time after a clean capture"
pass "clean capture: exit 0, no gap in the stats"

# The mock keeps 5 MiB per partition: 8 MB of incompressible records push
# the log start past offset 10, where the backup stopped.
"$KTAPE" gen -b "$BOOTSTRAP" -t churn -n 80 --size 100000 --compressibility 0 -z none >/dev/null
kcat_dump churn >"$T/churn.kcat"
low=$(head -n 1 "$T/churn.kcat" | jq -r .offset)
[ "$low" -gt 10 ] || fail "the sandbox did not drop old records (log start $low)"
rc=0
capture >"$T/second.json" 2>"$T/second.err" || rc=$?
[ "$rc" -eq 4 ] || fail "capture over a retention hole exited $rc, expected 4: $(cat "$T/second.err")"
grep -q 'RETENTION GAP: churn \[0\]: offsets 10\.\.'"$((low - 1))" "$T/second.err" || fail "no loud gap report: $(cat "$T/second.err")"
[ "$(jq -r .gap_offsets "$T/second.json")" -eq $((low - 10)) ] || fail "summary: $(cat "$T/second.json")"
manifest=$(ls "$REPO"/snapshots/*.json | tail -n 1)
jq -e --argjson low "$low" '.topics[] | select(.name == "churn") | .partitions[0].gaps ==
	[{"from": 10, "to": $low, "reason": "retention"}]' "$manifest" >/dev/null ||
	fail "manifest gaps: $(jq -c '.topics[].partitions[].gaps' "$manifest")"
grep -q "^ktape_capture_gap_offsets_total{repo=\".*\"} $((low - 10))\$" "$STATS" || fail "stats: $(cat "$STATS")"
second_success=$(sed -n 's/^ktape_capture_last_success_timestamp_seconds{.*} //p' "$STATS")
[ "$second_success" -eq "$first_success" ] || fail "a capture with a gap moved the last success time"
pass "the hole 10..$((low - 1)) is in the manifest, the summary and the stats; exit 4"

# The backup holds the first ten records and everything Kafka still has.
"$KTAPE" cat -r "$REPO" -t churn --from-offset "$low" >"$T/churn.ktape"
expect_same "$T/churn.kcat" "$T/churn.ktape"
[ "$("$KTAPE" cat -r "$REPO" -t churn --to-offset 10 | wc -l)" -eq 10 ] || fail "the first ten records are gone"
pass "records before the hole are still in the backup"

# Nothing new was lost: exit 0, the old gap stays recorded.
capture >"$T/third.json" 2>"$T/third.err" || fail "third capture failed: $(cat "$T/third.err")"
manifest=$(ls "$REPO"/snapshots/*.json | tail -n 1)
jq -e '.topics[] | select(.name == "churn") | .partitions[0].gaps | length == 1' "$manifest" >/dev/null ||
	fail "the recorded gap was dropped"
pass "a later clean capture exits 0 and keeps the recorded gap"
