#!/usr/bin/env bash
# ktape sandbox --from-snapshot REPO[:ID] creates a cluster shaped like the
# one a snapshot came from: the same topics with the same partition counts,
# empty and ready for a restore.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures.sh"
require_cmd kcat

start_fixture_b
"$KTAPE" capture -b "$BOOTSTRAP" -r "$T/repo" -t '^market\..*' -t _schemas >"$T/capture.out" 2>"$T/capture.err" ||
	fail "ktape capture failed: $(cat "$T/capture.err")"
stop_sandbox

# Latest snapshot, then the same snapshot by id, and a path with a colon.
start_sandbox -n 2 --from-snapshot "$T/repo"
kcat -L -b "$BOOTSTRAP" >"$T/metadata.txt"
grep -q 'topic "market.equities.trades.asx" with 30 partitions' "$T/metadata.txt" || fail "asx: $(cat "$T/metadata.txt")"
grep -q 'topic "market.crypto.trades.binance" with 40 partitions' "$T/metadata.txt" || fail "binance"
grep -q 'topic "_schemas" with 1 partitions' "$T/metadata.txt" || fail "_schemas"
[ "$(kcat_dump market.equities.trades.asx | wc -l)" -eq 0 ] || fail "the new cluster is not empty"
pass "latest snapshot's topics created with their partition counts"

# format/repository.md: a snapshot's manifest is snapshots/<id>.json.
id=$(ls "$T/repo/snapshots" | sed -n 's/\.json$//p' | head -n 1)
[ -n "$id" ] || fail "no snapshot manifest in $T/repo/snapshots"
mkdir -p "$T/with:colon"
cp -a "$T/repo" "$T/with:colon/repo"
start_sandbox --from-snapshot "$T/with:colon/repo:$id" --topic extra:2
kcat -L -b "$BOOTSTRAP" | grep -q 'topic "market.crypto.trades.binance" with 40 partitions' ||
	fail "snapshot $id through a path with a colon"
pass "REPO:ID, with a colon in the path, works"
expect_status 2 "$KTAPE" sandbox --from-snapshot "$T/repo:no-such-id"
pass "an unknown snapshot id is refused with exit 2"
