#!/usr/bin/env bash
# A restore into a topic with a different partition count: refused by
# default before anything is sent; with --partitioning key every keyed
# record lands where Java's default partitioner (murmur2) puts it, records
# without a key are spread evenly, and every record arrives exactly once.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures.sh"
require_cmd kcat jq python3

start_sandbox -n 1 --topic somabrain_events:4
"$KTAPE" gen -b "$BOOTSTRAP" -t somabrain_events -n 1000 --seed 301 --keys 400 --key-prefix mem- \
	--null-keys 5% --binary 20% --size 50-600 --headers 1 >"$T/gen.out" || fail "gen failed"
BOOTSTRAP=$BOOTSTRAP kcat_dump somabrain_events >"$T/src.dump"
REPO=$T/repo
"$KTAPE" capture -b "$BOOTSTRAP" -r "$REPO" -t somabrain_events --admin-timeout 500ms --no-progress \
	>/dev/null 2>"$T/capture.err" || { cat "$T/capture.err" >&2; fail "capture failed"; }

start_sandbox -n 1 --topic somabrain_events:3
set +e
"$KTAPE" restore -b "$BOOTSTRAP" -r "$REPO" >"$T/refused.out" 2>&1
rc=$?
set -e
[ "$rc" -eq 2 ] || fail "a restore into 3 partitions from 4 exited $rc: $(cat "$T/refused.out")"
grep -q "has 3 partitions but source topic somabrain_events had 4" "$T/refused.out" ||
	fail "unclear refusal: $(cat "$T/refused.out")"
grep -q -- "--partitioning key" "$T/refused.out" || fail "the refusal does not name --partitioning key"
[ "$(kcat_dump somabrain_events | wc -l)" -eq 0 ] || fail "records were sent before the refusal"
[ ! -d "$REPO/restores" ] || [ -z "$(ls "$REPO/restores")" ] || fail "a refused restore left a record"
pass "a partition count mismatch is refused before anything is sent"

"$KTAPE" restore -b "$BOOTSTRAP" -r "$REPO" --partitioning key --json >"$T/key.json" 2>"$T/key.err" ||
	{ cat "$T/key.err" >&2; fail "restore --partitioning key failed"; }
kcat_dump somabrain_events >"$T/dst.dump"
expect_same --sort-by-key-ts "$T/src.dump" "$T/dst.dump"

# murmur2 as Kafka's Java client computes it (Utils.murmur2), checked on
# Kafka's own test vectors first.
python3 - "$T/dst.dump" <<'EOF' || fail "placement check failed"
import json, sys

def murmur2(data):
    m, r = 0x5bd1e995, 24
    n = len(data)
    h = (0x9747b28c ^ n) & 0xffffffff
    for i in range(n // 4):
        k = data[4*i] | data[4*i+1] << 8 | data[4*i+2] << 16 | data[4*i+3] << 24
        k = (k * m) & 0xffffffff
        k ^= k >> r
        k = (k * m) & 0xffffffff
        h = ((h * m) & 0xffffffff) ^ k
    rest, tail = n % 4, n & ~3
    if rest == 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h ^= data[tail]
        h = (h * m) & 0xffffffff
    h ^= h >> 13
    h = (h * m) & 0xffffffff
    h ^= h >> 15
    return h

def signed(h):
    return h - (1 << 32) if h & 0x80000000 else h

for text, want in [(b"21", -973932308), (b"foobar", -790332482),
                   (b"a-little-bit-long-string", -985981536),
                   (b"a-little-bit-longer-string", -1486304829),
                   (b"abc", 479470107)]:
    assert signed(murmur2(text)) == want, (text, signed(murmur2(text)), want)

keyed = nulls = 0
per_partition_nulls = [0, 0, 0]
# kcat writes values as raw bytes: read them back byte for byte.
for line in open(sys.argv[1], encoding="utf-8", errors="surrogateescape"):
    rec = json.loads(line)
    if rec["key"] is None:
        nulls += 1
        per_partition_nulls[rec["partition"]] += 1
        continue
    keyed += 1
    want = (murmur2(rec["key"].encode("utf-8", "surrogateescape")) & 0x7fffffff) % 3
    if rec["partition"] != want:
        sys.exit("key %r in partition %d, murmur2 says %d" % (rec["key"], rec["partition"], want))
if not nulls or max(per_partition_nulls) - min(per_partition_nulls) > 1:
    sys.exit("null keys are not spread evenly: %r" % per_partition_nulls)
print("ok: %d keyed records where murmur2 puts them; %d null keys spread %r" % (keyed, nulls, per_partition_nulls))
EOF
pass "--partitioning key places records as a Java producer would"
