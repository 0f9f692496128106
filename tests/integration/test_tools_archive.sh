#!/usr/bin/env bash
# ktape export and import on a repository made by a real capture: a file
# archive and a piped one (-o - | import -) each give a repository that
# verifies clean and whose `ktape cat` equals the original's; compressed
# archives too; importing twice is harmless.  An uncompressed archive is
# read in place by cat, verify and ls; a compressed one is refused clearly.  A torn archive and archives
# with entries that would escape the repository (../, absolute, symlink)
# are refused with nothing published and nothing written outside.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures.sh"
require_cmd jq tar

start_fixture_a
REPO=$T/repo
"$KTAPE" -q capture -b "$BOOTSTRAP" -r "$REPO" -t '^.*' --admin-timeout 500ms --no-progress --block-size 8K ||
	fail "capture failed"
SNAP=$(ls "$REPO/snapshots" | sed 's/\.json$//')
topics=(audit_events outbox_events somabrain_events)
for t in "${topics[@]}"; do
	"$KTAPE" cat -r "$REPO" -t "$t" >"$T/orig.$t" || fail "cat $t of the original failed"
	[ -s "$T/orig.$t" ] || fail "the original's $t is empty"
done

# Checks that repository $1 holds SNAP, verifies clean and cats the same.
same_as_original() {
	local r=$1 t
	[ "$(ls "$r/snapshots")" = "$SNAP.json" ] || fail "$r does not hold exactly $SNAP: $(ls "$r/snapshots")"
	cmp -s "$r/snapshots/$SNAP.json" "$REPO/snapshots/$SNAP.json" || fail "$r: the manifest is not byte for byte the original"
	"$KTAPE" verify -r "$r" --all 2>"$T/v.err" || fail "$r does not verify: $(cat "$T/v.err")"
	for t in "${topics[@]}"; do
		"$KTAPE" cat -r "$r" -t "$t" >"$T/copy.$t" || fail "cat $t of $r failed"
		cmp -s "$T/orig.$t" "$T/copy.$t" || fail "$r: cat $t differs from the original's"
	done
}

"$KTAPE" export -r "$REPO" -o "$T/snap.tar" 2>/dev/null || fail "export failed"
tar -tf "$T/snap.tar" >"$T/list" || fail "tar cannot list the archive"
[ "$(head -n 1 "$T/list")" = ktape-archive.json ] || fail "the marker is not first"
[ "$(tail -n 1 "$T/list")" = "snapshots/$SNAP.json" ] || fail "the manifest is not last"
[ "$(grep -c '\.kts$' "$T/list")" -eq "$(jq '[.topics[].partitions[].segments[]] | length' "$REPO/snapshots/$SNAP.json")" ] ||
	fail "the archive does not hold every segment once"
"$KTAPE" import "$T/snap.tar" -r "$T/imported" 2>/dev/null || fail "import failed"
same_as_original "$T/imported"
"$KTAPE" import "$T/snap.tar" -r "$T/imported" 2>/dev/null || fail "a second import of the same archive failed"
same_as_original "$T/imported"
pass "export -> import -> verify clean, cat equal; importing twice is harmless"

# An uncompressed archive is a read-only repository, read in place.
"$KTAPE" verify -r "$T/snap.tar" 2>"$T/v.err" || fail "verify -r snap.tar: $(cat "$T/v.err")"
grep -q "1 snapshot(s).*clean" "$T/v.err" || fail "verify -r snap.tar: $(cat "$T/v.err")"
for t in "${topics[@]}"; do
	"$KTAPE" cat -r "$T/snap.tar" -t "$t" >"$T/tar.$t" || fail "cat -r snap.tar -t $t failed"
	cmp -s "$T/orig.$t" "$T/tar.$t" || fail "cat -r snap.tar -t $t differs from the repository's"
done
[ "$("$KTAPE" ls -r "$T/snap.tar" | sed -n 2p | awk '{print $1}')" = "$SNAP" ] || fail "ls -r snap.tar"
pass "cat, verify and ls read the uncompressed archive in place"

"$KTAPE" export -r "$REPO" -s "$SNAP" -o - 2>/dev/null | "$KTAPE" import - -r "$T/piped" 2>/dev/null ||
	fail "export -o - | import - failed"
same_as_original "$T/piped"
pass "export -o - piped into import -"

for c in zstd gzip; do
	"$KTAPE" export -r "$REPO" -o "$T/snap.tar.$c" --compress "$c" 2>/dev/null || fail "export --compress $c failed"
	"$KTAPE" import "$T/snap.tar.$c" -r "$T/imported-$c" 2>/dev/null || fail "import of a $c archive failed"
	same_as_original "$T/imported-$c"
done
[ "$(stat -c %s "$T/snap.tar.zstd")" -lt "$(stat -c %s "$T/snap.tar")" ] || fail "zstd did not make the archive smaller"
rc=0
"$KTAPE" cat -r "$T/snap.tar.zstd" -t audit_events >/dev/null 2>"$T/z.err" || rc=$?
[ "$rc" -eq 1 ] && grep -q "import it first.*--compress none" "$T/z.err" ||
	fail "cat of a compressed archive: exit $rc, $(cat "$T/z.err")"
expect_status 2 "$KTAPE" prune -r "$T/snap.tar" --keep-last 1
pass "zstd and gzip compressed archives round-trip"

# Expects import of $1 into a fresh repository to fail with exit $2 and a
# message matching $3, publishing no snapshot.
refused() {
	local rc=0 r=$T/refused.$RANDOM
	"$KTAPE" import "$1" -r "$r" 2>"$T/refused.err" || rc=$?
	[ "$rc" -eq "$2" ] || fail "import $1 exited $rc, not $2: $(cat "$T/refused.err")"
	grep -q -- "$3" "$T/refused.err" || fail "import $1: no '$3' in: $(cat "$T/refused.err")"
	[ -z "$(ls "$r/snapshots" 2>/dev/null)" ] || fail "import $1 published a snapshot"
}

# Torn archives: cut inside a segment, and cut just before the manifest.
size=$(stat -c %s "$T/snap.tar")
head -c $((size / 2)) "$T/snap.tar" >"$T/torn.tar"
refused "$T/torn.tar" 3 "cut short"
# tar -R names the 512-byte block where each entry's header starts.
mblock=$(tar -tRf "$T/snap.tar" | grep "snapshots/$SNAP.json" | sed -E 's/^block ([0-9]+):.*/\1/')
head -c $((mblock * 512)) "$T/snap.tar" >"$T/nomanifest.tar"
refused "$T/nomanifest.tar" 3 "no snapshot manifest"
head -c $((size / 2)) "$T/snap.tar.zstd" >"$T/torn.tar.zstd"
refused "$T/torn.tar.zstd" 3 ""
pass "torn archives are refused (exit 3) and publish nothing"

# Hostile archives, made with GNU tar: the marker, then one bad entry.
mkdir "$T/evil"
printf '{"format": "ktape-archive", "version": 1, "snapshot": "x", "repository_id": "", "created_ms": 0}\n' \
	>"$T/evil/ktape-archive.json"
echo payload >"$T/evil/x"
ln -s /etc/passwd "$T/evil/l"
evil() { # NAME TRANSFORM FILE
	(cd "$T/evil" && tar -cPf "$T/$1.tar" ktape-archive.json --transform "$2" "$3") || fail "tar could not make $1.tar"
}
evil dotdot 's,^x$,segments/../../escape.kts,' x
evil dotdot2 's,^x$,../escape.kts,' x
evil absolute "s,^x\$,$T/abs-escape.kts," x
evil symlink 's,^l$,segments/t/0/00000000000000000000-0000000000000000.kts,' l
evil other 's,^x$,segments/t/0/evil.sh,' x
for n in dotdot dotdot2 absolute symlink other; do
	refused "$T/$n.tar" 3 "refusing entry"
	expect_status 3 "$KTAPE" verify -r "$T/$n.tar" 2>/dev/null
done
expect_status 3 "$KTAPE" cat -r "$T/torn.tar" -t audit_events 2>/dev/null >/dev/null
[ ! -e "$T/escape.kts" ] && [ ! -e "$T/abs-escape.kts" ] && [ -z "$(find "$T" -name escape.kts)" ] ||
	fail "an entry escaped the repository"
pass "entries with .., absolute paths, links or foreign names are refused; nothing escapes"

expect_status 2 "$KTAPE" export -r "$REPO"
expect_status 2 "$KTAPE" export -r "$REPO" -o "$T/x.tar" --compress lz4
expect_status 2 "$KTAPE" import -r "$T/x"
expect_status 1 "$KTAPE" import "$T/does-not-exist.tar" -r "$T/x"
expect_status 1 "$KTAPE" export -r "$REPO" -s 20200101T000000000Z-00000000 -o "$T/none.tar"
[ ! -e "$T/none.tar" ] || fail "a failed export left its output"
pass "usage errors exit 2; a missing archive or snapshot 1, leaving no output"
