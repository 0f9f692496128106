#!/usr/bin/env bash
# The shared fixtures load as documented in fixtures.sh: every topic holds
# exactly the records `ktape gen --print` computes for it (checked with kcat
# and dumpcmp, all fields), and fixture (a)'s groups are committed at the
# documented offsets.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures.sh"
require_cmd kcat jq

start_fixture_a
fixture_a_expected "$T/expected_a"
for topic in audit_events outbox_events somabrain_events; do
	kcat_dump "$topic" >"$T/$topic.kcat"
	expect_same "$T/$topic.kcat" "$T/expected_a/$topic.jsonl"
done
[ "$(cat "$T"/expected_a/*.jsonl | wc -l)" -eq $((2250 * KT_FIXTURE_SIZE)) ] || fail "fixture a should hold $((2250 * KT_FIXTURE_SIZE)) records"
grep -q '"payload":null' "$T/expected_a/outbox_events.jsonl" || fail "outbox_events has no tombstones"
grep -q '"key":null' "$T/expected_a/somabrain_events.jsonl" || fail "somabrain_events has no null keys"
grep -q '"base64"' "$T/expected_a/somabrain_events.jsonl" || fail "somabrain_events has no binary values"
grep -q ',null' "$T/expected_a/audit_events.jsonl" || fail "audit_events has no null header values"

# Each group's consumer starts where fixture_a_commits says.
while read -r group topic partition offset; do
	echo "$group $topic $partition $offset"
done < <(fixture_a_commits) | sort >"$T/commits.want"
for group in audit_processor_group outbox_publisher_group; do
	topic=$(awk -v g="$group" '$1 == g { print $2; exit }' "$T/commits.want")
	kcat_group_starts "$group" "$topic" | awk -v g="$group" -v t="$topic" '{ print g, t, $1, $2 }'
done >"$T/commits.got"
# A caught-up partition yields no record; the consumer then started at the
# partition's end offset (its record count), and that is what is recorded.
while read -r group topic partition offset; do
	grep -q "^$group $topic $partition " "$T/commits.got" && continue
	end=$(grep -c "\"partition\":$partition," "$T/expected_a/$topic.jsonl" || true)
	echo "$group $topic $partition $end" >>"$T/commits.got"
done <"$T/commits.want"
sort "$T/commits.got" | cmp -s - "$T/commits.want" ||
	fail "group offsets: got $(cat "$T/commits.got") want $(cat "$T/commits.want")"
pass "groups committed at the documented offsets"
stop_sandbox

start_fixture_b
fixture_b_expected "$T/expected_b"
kcat -L -b "$BOOTSTRAP" >"$T/metadata.txt"
grep -q 'topic "market.equities.trades.asx" with 30 partitions' "$T/metadata.txt" || fail "asx partitions"
grep -q 'topic "market.crypto.trades.binance" with 40 partitions' "$T/metadata.txt" || fail "binance partitions"
for topic in market.equities.trades.asx market.crypto.trades.binance _schemas; do
	kcat_dump "$topic" >"$T/$topic.kcat"
	expect_same "$T/$topic.kcat" "$T/expected_b/$topic.jsonl"
done
# Keyed by symbol: one symbol, one partition.
jq -r '[.key, .partition] | @tsv' "$T/expected_b/market.crypto.trades.binance.jsonl" | sort -u |
	awk '{ n[$1]++ } END { for (k in n) if (n[k] > 1) exit 1 }' || fail "a symbol spans partitions"
[ "$(jq -r .partition "$T/expected_b/market.crypto.trades.binance.jsonl" | sort -u | wc -l)" -eq 40 ] ||
	fail "binance records do not reach all 40 partitions"
grep -q '"payload":null' "$T/expected_b/_schemas.jsonl" || fail "_schemas has no tombstones"
pass "fixture b: symbols keep to one partition, all partitions used"
stop_sandbox
