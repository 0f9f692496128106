#!/usr/bin/env bash
# Smoke test of the harness itself: kcat produces records of every shape
# into `ktape sandbox` and reads them back; dumpcmp must find them equal to
# a hand-written expectation in ktape's JSON format (so kcat's raw-byte
# output and ktape's base64 form are decoded alike), and must find the
# differences planted in altered copies.
. "$(dirname "$0")/lib.sh"
require_cmd kcat

start_sandbox -n 3 --topic shapes:2 --topic bulk:3:2

# Partition 0, with -Z: an empty key or value is produced as null.  Every
# record gets duplicated header names, a null header value (-H name without
# '=') and an empty one.
printf 'k1\tv1\nk2\t\n\tv3\n\t\n' |
	kcat_produce shapes -p 0 -K "$(printf '\t')" -Z -H h1=a -H h1=b -H h2 -H h3=
# Partition 1, without -Z: empty stays empty.  No headers.
printf 'k4\t\n\tv5\n' | kcat_produce shapes -p 1 -K "$(printf '\t')"
# Partition 1: one record whose value is a whole file with NUL, newline,
# control and non-UTF-8 bytes, keyed with UTF-8 and a backslash.
printf 'a\000b\nc\001d\377\376"\\q\t' >"$T/binary.dat"
kcat_produce shapes -p 1 -k 'kéy\x' "$T/binary.dat"

# 1000 records over three partitions, read back in order.
seq 1 1000 | kcat_produce bulk -k same-key
seq 1001 2000 | kcat_produce bulk -p 2

kcat_dump shapes >"$T/shapes.kcat"
kcat_dump bulk >"$T/bulk.kcat"
[ "$(wc -l <"$T/bulk.kcat")" -eq 2000 ] || fail "bulk: expected 2000 records, read $(wc -l <"$T/bulk.kcat")"
pass "2000 bulk records read back"

# The expectation, in ktape's format: valid JSON, base64 for bytes that are
# not UTF-8.  kcat -P stamps records with the current time, so timestamps
# are left out of this comparison (--ignore-ts).
H='"headers":["h1","a","h1","b","h2",null,"h3",""]'
BIN=$(base64 -w0 "$T/binary.dat")
cat >"$T/shapes.expected" <<EOF
{"topic":"shapes","partition":0,"offset":0,"tstype":"create","ts":0,$H,"key":"k1","payload":"v1"}
{"topic":"shapes","partition":0,"offset":1,"tstype":"create","ts":0,$H,"key":"k2","payload":null}
{"topic":"shapes","partition":0,"offset":2,"tstype":"create","ts":0,$H,"key":null,"payload":"v3"}
{"topic":"shapes","partition":0,"offset":3,"tstype":"create","ts":0,$H,"key":null,"payload":null}
{"topic":"shapes","partition":1,"offset":0,"tstype":"create","ts":0,"headers":[],"key":"k4","payload":""}
{"topic":"shapes","partition":1,"offset":1,"tstype":"create","ts":0,"headers":[],"key":"","payload":"v5"}
{"topic":"shapes","partition":1,"offset":2,"tstype":"create","ts":0,"headers":[],"key":"k\u00e9y\\\\x","payload":{"base64":"$BIN"}}
EOF
expect_same --ignore-ts "$T/shapes.kcat" "$T/shapes.expected"

# Timestamps are real and CreateTime.
now=$(date +%s%3N)
grep -q '"tstype":"create"' "$T/shapes.kcat" || fail "kcat did not report CreateTime"
ts=$(sed -n 's/.*"ts":\([0-9]*\),.*/\1/p' "$T/shapes.kcat" | head -n 1)
[ $((now - ts)) -ge 0 ] && [ $((now - ts)) -lt 120000 ] || fail "timestamp $ts is not recent (now $now)"
pass "timestamps are recent CreateTime"

# Line order does not matter; a dump compares equal to itself reversed.
tac "$T/bulk.kcat" >"$T/bulk.reversed"
expect_same "$T/bulk.kcat" "$T/bulk.reversed"

# dumpcmp must see each planted difference and name the field.
expect_diff() {
	local field=$1 out rc=0
	shift
	out=$(dumpcmp "$@") || rc=$?
	[ "$rc" -eq 1 ] || fail "dumpcmp exit $rc (want 1) for a changed $field: $out"
	case "$out" in
	*"differs in $field"* | *"counts differ"*) pass "dumpcmp names the changed $field" ;;
	*) fail "dumpcmp did not name $field: $out" ;;
	esac
}
sed '2s/"payload":null/"payload":""/' "$T/shapes.expected" >"$T/alt.null"
expect_diff payload --ignore-ts "$T/shapes.kcat" "$T/alt.null"
sed '1s/"h2",null/"h2",""/' "$T/shapes.expected" >"$T/alt.hdr"
expect_diff "header 3 value" --ignore-ts "$T/shapes.kcat" "$T/alt.hdr"
sed '6s/"key":""/"key":null/' "$T/shapes.expected" >"$T/alt.key"
expect_diff key --ignore-ts "$T/shapes.kcat" "$T/alt.key"
sed '7s/"base64":"YQ/"base64":"Yg/' "$T/shapes.expected" >"$T/alt.bin"
expect_diff payload --ignore-ts "$T/shapes.kcat" "$T/alt.bin"
sed '5s/"offset":0/"offset":9/' "$T/shapes.expected" >"$T/alt.off"
expect_diff offset --ignore-ts "$T/shapes.kcat" "$T/alt.off"
expect_same --ignore-ts --ignore-offsets "$T/shapes.kcat" "$T/alt.off"
expect_diff ts "$T/shapes.kcat" "$T/shapes.expected"
sed '$d' "$T/shapes.expected" >"$T/alt.short"
expect_diff "record count" --ignore-ts "$T/shapes.kcat" "$T/alt.short"
sed 's/"topic":"shapes"/"topic":"renamed"/' "$T/shapes.expected" >"$T/alt.topic"
expect_diff topic --ignore-ts "$T/shapes.kcat" "$T/alt.topic"
expect_same --ignore-ts --rename renamed=shapes "$T/shapes.kcat" "$T/alt.topic"
# Re-partitioned: same records, other partitions and offsets.
sed -e 's/"partition":0,"offset":\([0-9]\)/"partition":1,"offset":1\1/' "$T/shapes.expected" >"$T/alt.part"
expect_diff partition --ignore-ts "$T/shapes.kcat" "$T/alt.part"
expect_same --ignore-ts --sort-by-key-ts "$T/shapes.kcat" "$T/alt.part"
echo '{"topic":"shapes","partition":0,"offset":0,"key":"\q"}' >"$T/bad.json"
expect_status 2 dumpcmp "$T/bad.json" "$T/shapes.expected"
pass "dumpcmp refuses a malformed line"

stop_sandbox
pass "sandbox stopped cleanly on SIGTERM"
