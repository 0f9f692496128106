#!/usr/bin/env bash
# ktape gen: what it produces is exactly what `ktape gen --print` computes
# without a broker (every field, timestamps and partitions included), as
# kcat reads it back; --commit sets group offsets a consumer then starts at;
# and bad input is refused with exit 2.
. "$(dirname "$0")/lib.sh"
require_cmd kcat jq

start_sandbox -n 3 --topic events:5 --topic single:1

SHAPE=(--headers 4 --null-headers 20% --dup-headers 30% --tombstones 10% --null-keys 10%
	--binary 20% --disorder 10% --compressibility 60 --size 0-700 --seed 9)
"$KTAPE" gen -b "$BOOTSTRAP" -t events -n 3000 "${SHAPE[@]}" >"$T/summary.json" ||
	fail "ktape gen failed"
"$KTAPE" gen --print -t events --partitions 5 -n 3000 "${SHAPE[@]}" >"$T/expected.jsonl" ||
	fail "ktape gen --print failed"
kcat_dump events >"$T/events.kcat"
expect_same "$T/events.kcat" "$T/expected.jsonl"

# The summary agrees with what the topic holds.
[ "$(jq .records "$T/summary.json")" -eq 3000 ] || fail "summary records: $(cat "$T/summary.json")"
[ "$(jq .delivered "$T/summary.json")" -eq 3000 ] || fail "summary delivered: $(cat "$T/summary.json")"
for p in 0 1 2 3 4; do
	want=$(grep -c "\"partition\":$p," "$T/expected.jsonl" || true)
	got=$(jq ".partitions[$p].records" "$T/summary.json")
	last=$(jq ".partitions[$p].last_offset" "$T/summary.json")
	[ "$got" -eq "$want" ] && [ "$last" -eq $((want - 1)) ] ||
		fail "partition $p: summary says $got records up to $last, the topic has $want"
done
tomb=$(grep -c '"payload":null' "$T/expected.jsonl" || true)
[ "$(jq .tombstones "$T/summary.json")" -eq "$tomb" ] || fail "tombstone count differs"
[ "$tomb" -gt 150 ] && [ "$tomb" -lt 450 ] || fail "10% tombstones gave $tomb of 3000"
grep -q '"base64"' "$T/expected.jsonl" || fail "no binary values were generated"
pass "summary matches the topic ($tomb tombstones)"

# The same seed gives the same records; another seed does not.
"$KTAPE" gen --print -t events --partitions 5 -n 3000 "${SHAPE[@]}" | cmp -s - "$T/expected.jsonl" ||
	fail "--print is not deterministic"
"$KTAPE" gen --print -t events --partitions 5 -n 3000 "${SHAPE[@]}" --seed 10 | cmp -s - "$T/expected.jsonl" &&
	fail "--seed 10 gave the same records as --seed 9"
pass "records are a function of the seed"

# --bytes: a byte budget, zstd-compressed in big batches.
"$KTAPE" gen -b "$BOOTSTRAP" -t single --bytes 2M --size 1000-3000 -z zstd >"$T/bytes.json" ||
	fail "ktape gen --bytes failed"
bytes=$(jq .bytes "$T/bytes.json")
[ "$bytes" -ge 2097152 ] && [ "$bytes" -lt $((2097152 + 4000)) ] || fail "--bytes 2M produced $bytes bytes"
n=$(kcat_dump single | wc -l)
[ "$n" -eq "$(jq .records "$T/bytes.json")" ] || fail "single holds $n records, gen said $(jq .records "$T/bytes.json")"
pass "--bytes 2M produced $bytes bytes in $n records"
# With both limits, whichever comes first, in either flag order.
[ "$("$KTAPE" gen --print -t x -p 0 -n 3 --bytes 10K --size 1000 | wc -l)" -eq 3 ] || fail "-n 3 --bytes 10K"
[ "$("$KTAPE" gen --print -t x -p 0 --bytes 10K -n 3 --size 1000 | wc -l)" -eq 3 ] || fail "--bytes 10K -n 3"
[ "$("$KTAPE" gen --print -t x -p 0 -n 1000 --bytes 10K --size 1000 | wc -l)" -eq 11 ] || fail "-n 1000 --bytes 10K"
pass "--count and --bytes: whichever limit comes first"

# --commit: a consumer of the group starts at the committed offsets.
"$KTAPE" gen -b "$BOOTSTRAP" -n 0 --commit grp:events:0:5 --commit grp:events:3:2 >"$T/commit.json" ||
	fail "ktape gen --commit failed"
[ "$(jq '.commits | length' "$T/commit.json")" -eq 2 ] || fail "commit summary: $(cat "$T/commit.json")"
starts=$(kcat_group_starts grp events | tr '\n' ' ')
[ "$starts" = "0 5 1 0 2 0 3 2 4 0 " ] || fail "group grp started at $starts"
pass "group offsets committed: consumer starts at $starts"

# Refusals, each with exit 2 and nothing produced.
expect_status 2 "$KTAPE" gen -b "$BOOTSTRAP" -t events -n 5 --size 9-3
expect_status 2 "$KTAPE" gen -b "$BOOTSTRAP" -t events -n 5 --null-keys 2
expect_status 2 "$KTAPE" gen -b "$BOOTSTRAP" -t events -n 5 -p 5 -X bogus.property=1
expect_status 2 "$KTAPE" gen -b "$BOOTSTRAP" -t events -n 5 --commit nocolons
expect_status 2 "$KTAPE" gen --print -t events -n 5
expect_status 2 "$KTAPE" gen -t events -n 5
expect_status 1 "$KTAPE" gen -b "$BOOTSTRAP" -t no_such_topic -n 5
printf 'client.id=x\nnot a property line\n' >"$T/bad.properties"
out=$("$KTAPE" gen -b "$BOOTSTRAP" -t events -n 5 -F "$T/bad.properties" 2>&1) && fail "bad -F accepted"
case $out in *"bad.properties:2"*) ;; *) fail "-F error does not name file:line: $out" ;; esac
[ "$(kcat_dump events | wc -l)" -eq 3000 ] || fail "a refused run produced records"
pass "bad flags refused with exit 2, unknown topic with exit 1, nothing produced"

stop_sandbox
