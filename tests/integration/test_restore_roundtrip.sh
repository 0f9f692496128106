#!/usr/bin/env bash
# capture -> ktape restore into a fresh sandbox -> kcat reads back exactly
# what it reads from the source, field by field (keys, values, headers,
# timestamps, partitions, offsets), for both fixtures and every record shape.
# A rerun is a no-op; --prefix and --map rename; a missing target topic, an
# unreachable broker, an unknown snapshot and a bad window fail clearly
# before anything is sent.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures.sh"
require_cmd kcat jq

# shellcheck disable=SC2046 # one flag per word
start_sandbox -n 3 $(fixture_a_topics) $(fixture_b_topics) --topic shapes:3
SRC=$BOOTSTRAP
fixture_a_load
fixture_b_load
# Shapes only kcat makes: null and empty keys and values (-Z turns empty
# into null, without it empty stays empty), duplicated, null and empty
# headers, binary bytes, a 1 MiB value.
printf 'k1\tv1\nk2\t\n\tv3\n\t\n' |
	kcat_produce shapes -p 0 -K "$(printf '\t')" -Z -H h1=a -H h1=b -H h2 -H h3=
printf 'k4\t\n\tv5\n\t\n' | kcat_produce shapes -p 1 -K "$(printf '\t')" -H e=
printf 'a\000b\nc\001d\377\376"\\q\t' >"$T/binary.dat"
kcat_produce shapes -p 1 -k 'kéy\x' "$T/binary.dat"
head -c 1048576 /dev/urandom >"$T/big.dat"
kcat_produce shapes -p 2 -k big -X message.max.bytes=2000000 "$T/big.dat"

topics=(audit_events outbox_events somabrain_events market.equities.trades.asx
	market.crypto.trades.binance _schemas shapes)
REPO=$T/repo
"$KTAPE" capture -b "$SRC" -r "$REPO" -t '^.*' --admin-timeout 500ms --no-progress \
	>"$T/capture.out" 2>"$T/capture.err" || { cat "$T/capture.err" >&2; fail "capture failed"; }
total=0
for t in "${topics[@]}"; do
	BOOTSTRAP=$SRC kcat_dump "$t" >"$T/$t.src"
	total=$((total + $(wc -l <"$T/$t.src")))
done
note "source holds $total records"

# The target: topics created from the snapshot, as the error message of a
# restore into a bare sandbox tells the operator to do.
start_sandbox -n 3 --from-snapshot "$REPO"
DST=$BOOTSTRAP
"$KTAPE" restore -b "$DST" -r "$REPO" --json -X message.max.bytes=2000000 --stats-file "$T/stats.prom" \
	>"$T/restore.json" 2>"$T/restore.err" || { cat "$T/restore.err" >&2; fail "restore failed"; }
grep -qE "^ktape_restore_records_acked_total\{snapshot=\"[^\"]+\"\} $total\$" "$T/stats.prom" ||
	fail "--stats-file lacks the acknowledged count: $(cat "$T/stats.prom")"
[ "$(jq -r .records_acked "$T/restore.json")" -eq "$total" ] ||
	fail "restore acknowledged $(jq -r .records_acked "$T/restore.json") of $total records"
[ "$(jq -r .timestamps_not_exact "$T/restore.json")" -eq 0 ] || fail "timestamps were not kept"
rid=$(jq -r .restore_id "$T/restore.json")
[ -s "$REPO/restores/$rid/plan.json" ] && [ -s "$REPO/restores/$rid/offsets.ktm" ] ||
	fail "restore record $rid is incomplete: $(ls "$REPO/restores/$rid")"
[ "$(jq -r .state "$REPO/restores/$rid/checkpoint.json")" = complete ] || fail "checkpoint is not complete"
for t in "${topics[@]}"; do
	BOOTSTRAP=$DST kcat_dump "$t" >"$T/$t.dst"
	expect_same "$T/$t.src" "$T/$t.dst"
done
pass "restored $total records; kcat reads the same records from both clusters"

# The same command again finds the restore complete and sends nothing.
"$KTAPE" restore -b "$DST" -r "$REPO" --json -X message.max.bytes=2000000 >"$T/again.json" 2>"$T/again.err" ||
	{ cat "$T/again.err" >&2; fail "rerun failed"; }
jq -e '.already_complete and .records_sent == 0 and .resumed' "$T/again.json" >/dev/null ||
	fail "rerun was not a no-op: $(cat "$T/again.json")"
[ "$(jq -r .restore_id "$T/again.json")" = "$rid" ] || fail "rerun did not find restore $rid"
BOOTSTRAP=$DST kcat_dump shapes | "$DUMPCMP" -q "$T/shapes.src" - || fail "rerun changed the target"
pass "rerunning a finished restore is a no-op"

# Renaming: --prefix for every topic, --map for one, into a third cluster.
start_sandbox -n 1 --topic dr.shapes:3 --topic copy.outbox:2
REN=$BOOTSTRAP
"$KTAPE" restore -b "$REN" -r "$REPO" -t shapes -t outbox_events --prefix dr. \
	--map outbox_events=copy.outbox -X message.max.bytes=2000000 >"$T/rename.out" 2>&1 ||
	{ cat "$T/rename.out" >&2; fail "restore with --prefix/--map failed"; }
BOOTSTRAP=$REN kcat_dump dr.shapes >"$T/dr.shapes"
expect_same --rename dr.shapes=shapes "$T/shapes.src" "$T/dr.shapes"
BOOTSTRAP=$REN kcat_dump copy.outbox >"$T/copy.outbox"
expect_same --rename copy.outbox=outbox_events "$T/outbox_events.src" "$T/copy.outbox"
pass "--prefix and --map restore into renamed topics"

# A missing target topic: refused before anything is sent, with the way out,
# and (Metadata for all topics only) no topic is auto-created by asking.
set +e
"$KTAPE" restore -b "$REN" -r "$REPO" -t _schemas --prefix missing. --timeout 2s >"$T/missing.out" 2>&1
rc=$?
set -e
[ "$rc" -eq 1 ] || fail "restore into a missing topic exited $rc: $(cat "$T/missing.out")"
grep -q "ktape sandbox --from-snapshot" "$T/missing.out" || fail "no hint to create topics: $(cat "$T/missing.out")"
kcat -L -b "$REN" | grep -q "missing\._schemas" && fail "the missing topic was auto-created"
pass "a missing target topic is refused with a hint, and not auto-created"

# Unreachable brokers, unknown snapshot, bad windows, unknown topic.
set +e
"$KTAPE" restore -b 127.0.0.1:1 -r "$REPO" --timeout 1s >"$T/down.out" 2>&1
rc=$?
set -e
[ "$rc" -eq 1 ] && grep -q "cannot reach the target brokers 127.0.0.1:1" "$T/down.out" ||
	fail "unreachable broker: exit $rc, $(cat "$T/down.out")"
expect_status 1 "$KTAPE" restore -b "$DST" -r "$REPO" -s 20200101T000000000Z-00000000
expect_status 1 "$KTAPE" restore -b "$DST" -r "$REPO" -t no_such_topic
expect_status 2 "$KTAPE" restore -b "$DST" -r "$REPO" --from-time 2026-01-02 --to-time 2026-01-01
expect_status 2 "$KTAPE" restore -b "$DST" -r "$REPO" --from-offset 10 --to-offset 5
expect_status 2 "$KTAPE" restore -b "$DST" -r "$REPO" --from-offset 1:2:3:4
expect_status 2 "$KTAPE" restore -r "$REPO"
pass "unreachable brokers, unknown snapshots and topics, bad windows fail clearly"

# Batches are compressed unless -X says otherwise (RELIABILITY.md finding
# 9.6): 8 MB of JSON-like records fit the sandbox's 5 MiB per partition only
# compressed, so an uncompressed restore would lose its oldest records to
# the target's retention and the count would come up short.
start_sandbox -n 1 --topic big:1
BIG=$BOOTSTRAP
"$KTAPE" gen -b "$BIG" -t big -n 16000 --size 500 --seed 12 >/dev/null || fail "gen big failed"
"$KTAPE" -q capture -b "$BIG" -r "$T/bigrepo" -t big --admin-timeout 500ms --no-progress || fail "capture big failed"
start_sandbox -n 1 --topic big:1
"$KTAPE" -q restore -b "$BOOTSTRAP" -r "$T/bigrepo" --no-progress >"$T/big.out" 2>&1 || fail "restore big failed: $(cat "$T/big.out")"
[ ! -s "$T/big.out" ] || fail "-q restore printed: $(cat "$T/big.out")"
low=$(kcat -Q -b "$BOOTSTRAP" -t big:0:-2 2>/dev/null | awk '{print $NF}')
n=$(kcat -C -b "$BOOTSTRAP" -t big -e -q -f 'x\n' | wc -l)
[ "$n" -eq 16000 ] || fail "restored 8 MB into a 5 MiB partition: $n of 16000 records kept (log start ${low:-?}): batches not compressed?"
pass "restore compresses batches by default: 8 MB of records fit the target's 5 MiB"
