#!/usr/bin/env bash
# ktape capture then ktape cat gives back exactly what kcat reads from the
# cluster, field by field, for every record shape and both fixtures; a
# second capture after more data adds exactly the new records; committed
# group offsets are in the manifest; configs the sandbox cannot describe
# are recorded as unavailable with one warning.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures.sh"
require_cmd kcat jq

# shellcheck disable=SC2046 # one flag per word
start_sandbox -n 3 $(fixture_a_topics) $(fixture_b_topics) --topic shapes:3 --topic idle:2
fixture_a_load
fixture_b_load

# Shapes kcat makes: null and empty keys and values (-Z turns empty into
# null), duplicated and null headers, binary with NUL and newlines, and
# 1 MiB values.
printf 'k1\tv1\nk2\t\n\tv3\n\t\n' |
	kcat_produce shapes -p 0 -K "$(printf '\t')" -Z -H h1=a -H h1=b -H h2 -H h3=
printf 'k4\t\n\tv5\n' | kcat_produce shapes -p 1 -K "$(printf '\t')"
printf 'a\000b\nc\001d\377\376"\\q\t' >"$T/binary.dat"
kcat_produce shapes -p 1 -k 'kéy\x' "$T/binary.dat"
head -c 1048576 /dev/urandom >"$T/big.dat"
kcat_produce shapes -p 2 -k big -X message.max.bytes=2000000 "$T/big.dat"
kcat_produce shapes -p 2 -k big2 -X message.max.bytes=2000000 "$T/big.dat"

topics=(audit_events outbox_events somabrain_events market.equities.trades.asx
	market.crypto.trades.binance _schemas shapes idle)
REPO=$T/repo

capture() {
	"$KTAPE" capture -b "$BOOTSTRAP" -r "$REPO" --admin-timeout 500ms --no-progress "$@"
}

compare_all() {
	local t
	for t in "${topics[@]}"; do
		kcat_dump "$t" >"$T/$t.kcat"
		"$KTAPE" cat -r "$REPO" -t "$t" >"$T/$t.ktape" || fail "ktape cat -t $t failed"
		jq -e . "$T/$t.ktape" >/dev/null || fail "ktape cat -t $t printed invalid JSON"
		expect_same "$T/$t.kcat" "$T/$t.ktape"
	done
}

# Every topic by regex (no internal topic comes along), group offsets by name.
capture -t '^.*' --group audit_processor_group --group outbox_publisher_group --json \
	>"$T/first.json" 2>"$T/first.err" || { cat "$T/first.err" >&2; fail "first capture failed"; }
total=0
for t in "${topics[@]}"; do
	total=$((total + $(kcat_dump "$t" | wc -l)))
done
[ "$(jq -r .kind "$T/first.json")" = full ] || fail "first snapshot is not full: $(cat "$T/first.json")"
[ "$(jq -r .records "$T/first.json")" -eq "$total" ] || fail "summary says $(jq -r .records "$T/first.json") records, kcat reads $total"
[ "$(jq -r '.topics | length' "$T/first.json")" -eq "${#topics[@]}" ] || fail "regex selected $(jq -c '[.topics[].name]' "$T/first.json")"
pass "full capture of $total records in ${#topics[@]} topics"
[ "$(grep -c 'could not describe topic configs' "$T/first.err")" -eq 1 ] || fail "expected one configs warning: $(cat "$T/first.err")"
compare_all

manifest=$(ls "$REPO"/snapshots/*.json | tail -n 1)
jq -e '[.topics[] | select(.name == "idle") | .partitions[] | select(.end_offset == 0)] | length == 2' \
	"$manifest" >/dev/null || fail "empty partitions are missing from the manifest"
jq -e '[.topics[].configs] | all(. == null)' "$manifest" >/dev/null || fail "configs should be null (unavailable)"
pass "empty partitions recorded; configs recorded as unavailable"
while read -r group topic partition offset; do
	jq -e --arg g "$group" --arg t "$topic" --argjson p "$partition" --argjson o "$offset" \
		'[.groups[] | select(.group == $g and .topic == $t and .partition == $p and .offset == $o)] | length == 1' \
		"$manifest" >/dev/null || fail "group offset $group $topic/$partition@$offset missing: $(jq -c .groups "$manifest")"
done < <(fixture_a_commits)
pass "committed group offsets are in the manifest"
grep -q "$BOOTSTRAP" "$manifest" || fail "manifest does not name its source"

# More data, then an incremental capture adds exactly the new records.
"$KTAPE" gen -b "$BOOTSTRAP" -t audit_events -n 300 --seed 900 >/dev/null
seq 1 77 | kcat_produce idle -p 1
capture -t '^.*' --groups '^audit' --json >"$T/second.json" 2>"$T/second.err" || { cat "$T/second.err" >&2; fail "second capture failed"; }
[ "$(grep -c "could not list consumer groups.*needs an explicit --group list" "$T/second.err")" -eq 1 ] ||
	fail "--groups on a broker without ListConsumerGroups: expected one warning: $(cat "$T/second.err")"
[ "$(jq -r .kind "$T/second.json")" = incremental ] || fail "second snapshot is not incremental"
[ "$(jq -r .parent "$T/second.json")" = "$(jq -r .snapshot "$T/first.json")" ] || fail "wrong parent"
[ "$(jq -r .records "$T/second.json")" -eq 377 ] || fail "incremental captured $(jq -r .records "$T/second.json") records, expected 377"
pass "incremental capture added exactly the 377 new records"
compare_all

# The first snapshot still reads as it was.
"$KTAPE" cat -r "$REPO" -s "$(jq -r .snapshot "$T/first.json")" -t idle >"$T/idle.first"
[ ! -s "$T/idle.first" ] || fail "the first snapshot's idle topic is not empty any more"
pass "the earlier snapshot is unchanged"
