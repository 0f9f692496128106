#!/usr/bin/env bash
# Time and offset windows restore exactly the records inside them, and a
# narrow time window reads only the blocks around it, not the whole backup.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures.sh"
require_cmd kcat jq

start_sandbox -n 1 --topic audit_events:2 --topic outbox_events:2
SRC=$BOOTSTRAP
# Timestamps in order (no --disorder) over 2 h, so a time window is a
# narrow stretch of blocks.
"$KTAPE" gen -b "$SRC" -t audit_events -n 3000 --seed 101 --keys 50 --headers 2 --null-headers 20% \
	--size 150-400 --ts-span 2h >/dev/null || fail "gen audit_events failed"
"$KTAPE" gen -b "$SRC" -t outbox_events -n 600 --seed 201 --keys 100 --tombstones 10% \
	--disorder 10% >/dev/null || fail "gen outbox_events failed"
kcat_dump audit_events >"$T/audit.src"
kcat_dump outbox_events >"$T/outbox.src"
REPO=$T/repo
# Small blocks, so that "reads ~1% of blocks" has blocks to count.
"$KTAPE" capture -b "$SRC" -r "$REPO" -t audit_events -t outbox_events --block-size 8K \
	--admin-timeout 500ms --no-progress >/dev/null 2>"$T/capture.err" ||
	{ cat "$T/capture.err" >&2; fail "capture failed"; }

start_sandbox -n 1 --from-snapshot "$REPO"
DST=$BOOTSTRAP

# A time window: [from, to) taken from two records' timestamps.
from=$(jq -s 'map(.ts) | sort | .[1500]' "$T/audit.src")
to=$(jq -s 'map(.ts) | sort | .[1530]' "$T/audit.src")
jq -c --argjson f "$from" --argjson t "$to" 'select(.ts >= $f and .ts < $t)' "$T/audit.src" >"$T/audit.want"
want=$(wc -l <"$T/audit.want")
[ "$want" -ge 25 ] || fail "the window holds only $want records"
"$KTAPE" restore -b "$DST" -r "$REPO" -t audit_events --from-time "$from" --to-time "$to" --json \
	>"$T/time.json" 2>"$T/time.err" || { cat "$T/time.err" >&2; fail "time window restore failed"; }
BOOTSTRAP=$DST kcat_dump audit_events >"$T/audit.dst"
expect_same --ignore-offsets "$T/audit.want" "$T/audit.dst"
read -r blocks_read blocks_total < <(jq -r '"\(.blocks_read) \(.blocks_total)"' "$T/time.json")
note "time window of $want of 3000 records read $blocks_read of $blocks_total blocks"
[ "$blocks_total" -ge 50 ] || fail "expected many blocks, got $blocks_total"
[ "$blocks_read" -le $((blocks_total / 10)) ] ||
	fail "a 1% window read $blocks_read of $blocks_total blocks"
pass "a time window restores exactly its $want records, reading $blocks_read of $blocks_total blocks"

# ISO-8601 bounds select the same window as epoch milliseconds.
iso() { date -u -d "@$(($1 / 1000))" +%Y-%m-%dT%H:%M:%S.$(printf %03d $(($1 % 1000)))Z; }
"$KTAPE" restore -b "$DST" -r "$REPO" -t audit_events --from-time "$(iso "$from")" \
	--to-time "$(iso "$to")" --dry-run --json >"$T/iso.json" 2>"$T/iso.err" ||
	{ cat "$T/iso.err" >&2; fail "dry run with ISO-8601 bounds failed"; }
# The same window is the same plan: the dry run finds the restore above
# and predicts that all of it is already in the target.
jq -e --argjson w "$want" '.resumed and .records_skipped == $w and .records_sent == 0' "$T/iso.json" \
	>/dev/null || fail "ISO-8601 bounds did not select the same window: $(cat "$T/iso.json")"
"$KTAPE" restore -b "$DST" -r "$REPO" -t audit_events --from-time "$(iso "$from")" \
	--to-time "$(iso "$to")" --dry-run --new --json >"$T/iso-new.json" 2>"$T/iso.err" ||
	{ cat "$T/iso.err" >&2; fail "dry run --new failed"; }
jq -e --argjson w "$want" '.records_sent == $w and .restore_id == ""' "$T/iso-new.json" >/dev/null ||
	fail "dry run --new: $(cat "$T/iso-new.json")"
[ "$(ls "$REPO/restores" | wc -l)" -eq 1 ] || fail "a dry run wrote a restore record"
pass "ISO-8601 and epoch-ms bounds agree; dry runs record nothing"

# Offset windows: a plain number for every partition, P:N for one.
"$KTAPE" restore -b "$DST" -r "$REPO" -t outbox_events --from-offset 100 --to-offset 1:250 \
	--from-offset 0:20 --to-offset 0:40 >"$T/off.out" 2>&1 ||
	{ cat "$T/off.out" >&2; fail "offset window restore failed"; }
jq -c 'select((.partition == 0 and .offset >= 20 and .offset < 40) or
	(.partition == 1 and .offset >= 100 and .offset < 250))' "$T/outbox.src" >"$T/outbox.want"
BOOTSTRAP=$DST kcat_dump outbox_events >"$T/outbox.dst"
expect_same --ignore-offsets "$T/outbox.want" "$T/outbox.dst"
pass "offset windows restore exactly [from, to) of each partition"

# A coarse check of --max-rate: 170 records at 100/s take at least 1.5 s.
start=$(date +%s%N)
"$KTAPE" restore -b "$DST" -r "$REPO" -t outbox_events --map outbox_events=audit_events \
	--partitioning key --from-offset 100 --to-offset 1:250 --from-offset 0:20 --to-offset 0:40 \
	--max-rate 100 --dry-run >"$T/rate.out" 2>&1 || { cat "$T/rate.out" >&2; fail "rate-limited dry run failed"; }
ms=$((($(date +%s%N) - start) / 1000000))
[ "$ms" -ge 1500 ] && [ "$ms" -le 6000 ] || fail "170 records at --max-rate 100 took $ms ms"
pass "--max-rate 100 spreads 170 records over $ms ms"
