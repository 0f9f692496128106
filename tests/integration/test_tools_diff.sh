#!/usr/bin/env bash
# ktape diff: a fresh capture of fixture (a) (headers, null keys, tombstones,
# binary values) and a small topic equals its source (exit 0); records
# produced after the snapshot are counted, not differences.  Against a second
# cluster holding different data the differences are found (exit 6): a
# timestamp-only change, changed records, and records missing live, each
# with the first differing offset.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures.sh"
require_cmd jq

# shellcheck disable=SC2046 # one flag per word
start_sandbox $(fixture_a_topics) --topic t:2
fixture_a_load
gen() { "$KTAPE" gen -b "$BOOTSTRAP" -t t "$@" >/dev/null || fail "gen $* failed"; }
gen -p 0 -n 100 --seed 1
gen -p 1 -n 50 --seed 3 --headers 2 --tombstones 10% --null-keys 10% --ts-span 0
REPO=$T/repo
"$KTAPE" -q capture -b "$BOOTSTRAP" -r "$REPO" -t '^.*' --admin-timeout 500ms --no-progress || fail "capture failed"
FIRST_BOOTSTRAP=$BOOTSTRAP

"$KTAPE" diff -b "$BOOTSTRAP" -r "$REPO" --json >"$T/equal.json" 2>"$T/equal.err" ||
	fail "diff of a fresh capture: $(cat "$T/equal.err")"
jq -e '.status == "equal" and .partitions == 10 and .records_equal == 2400 and .differing == 0 and
	.only_snapshot == 0 and .only_live == 0 and ([.partition_list[] | select(.status != "equal")] | length == 0)' \
	"$T/equal.json" >/dev/null || fail "diff of a fresh capture: $(jq -c . "$T/equal.json")"
grep -q "2400 record(s) equal.*: equal" "$T/equal.err" || fail "diff summary: $(cat "$T/equal.err")"
pass "a fresh capture equals its source: 2400 records in 10 partitions, exit 0"

# Newer records are not differences, but are counted; -t limits the topics.
gen -p 1 -n 10 --seed 9
"$KTAPE" diff -b "$BOOTSTRAP" -r "$REPO" -t t -t '^audit' --json >"$T/newer.json" 2>/dev/null ||
	fail "records produced after the snapshot made diff fail"
jq -e '.status == "equal" and .topics == 2 and .partitions == 4 and .live_after_end == 10 and
	(.partition_list[] | select(.topic == "t" and .partition == 1) | .live_after_end == 10)' "$T/newer.json" >/dev/null ||
	fail "diff after more records: $(jq -c . "$T/newer.json")"
pass "records produced after the snapshot are counted, not differences; -t selects topics"

# A second cluster with different data in t: partition 0 keeps record 0,
# then has other timestamps (1-4) and other records (5-99); partition 1
# (one timestamp for all, so that a shorter run gives the same records)
# has the same first 40 records and lacks the last 10.
start_sandbox --topic t:2
gen -p 0 -n 5 --seed 1
gen -p 0 -n 95 --seed 2
gen -p 1 -n 40 --seed 3 --headers 2 --tombstones 10% --null-keys 10% --ts-span 0
rc=0
"$KTAPE" diff -b "$BOOTSTRAP" -r "$REPO" -t t --json >"$T/diff.json" 2>"$T/diff.err" || rc=$?
[ "$rc" -eq 6 ] || fail "diff against different data exited $rc, not 6: $(cat "$T/diff.err")"
jq -e '.status == "different" and .partitions_different == 2 and
	(.partition_list[] | select(.partition == 0) | .records_equal == 1 and .differing == 99 and
	 .first_difference == 1 and .first_difference_field == "timestamp") and
	(.partition_list[] | select(.partition == 1) | .records_equal == 40 and .only_snapshot == 10 and
	 .differing == 0 and .first_difference == 40 and .first_difference_field == "only in the snapshot")' \
	"$T/diff.json" >/dev/null || fail "diff against different data: $(jq -c . "$T/diff.json")"
rc=0
"$KTAPE" diff -b "$BOOTSTRAP" -r "$REPO" -t t >"$T/diff.txt" 2>"$T/diff.err" || rc=$?
[ "$rc" -eq 6 ] || fail "diff (text) exited $rc"
grep -q "^DIFFERENT t/0 \[0, 100): 1 equal, 99 differ, 0 only in the snapshot, 0 only live; first difference at offset 1 (timestamp)" \
	"$T/diff.txt" || fail "diff text: $(cat "$T/diff.txt")"
grep -q "^DIFFERENT t/1 .*first difference at offset 40 (only in the snapshot)" "$T/diff.txt" || fail "diff text: $(cat "$T/diff.txt")"
grep -q "DIFFERENT in 2 partition(s)" "$T/diff.err" || fail "diff summary: $(cat "$T/diff.err")"
pass "different data: exit 6, per partition the counts and the first differing offset and field"

# Fixture (a) does not exist in the second cluster at all.
rc=0
"$KTAPE" diff -b "$BOOTSTRAP" -r "$REPO" -t audit_events --json >"$T/gone.json" 2>/dev/null || rc=$?
[ "$rc" -eq 6 ] || fail "diff against a missing topic exited $rc"
jq -e '.only_snapshot == 750 and (.partition_list[0] | .live_high == -1 and .first_difference == 0)' "$T/gone.json" >/dev/null ||
	fail "diff against a missing topic: $(jq -c . "$T/gone.json")"
pass "a topic missing live: every record only in the snapshot"

expect_status 2 "$KTAPE" diff -r "$REPO"
expect_status 2 "$KTAPE" diff -b "$FIRST_BOOTSTRAP"
expect_status 1 "$KTAPE" diff -b "$FIRST_BOOTSTRAP" -r "$REPO" -t nosuchtopic
expect_status 1 "$KTAPE" diff -b "$FIRST_BOOTSTRAP" -r "$REPO" -s 20200101T000000000Z-00000000
pass "usage errors exit 2; an unknown topic or snapshot 1"
