#!/usr/bin/env bash
# Disk faults.  Each must give a clear error naming what and where, a
# non-zero exit, nothing published half-way, and earlier snapshots intact:
#   * the disk fills during a capture (a 2 MiB tmpfs): no snapshot is
#     committed, the earlier one verifies, and once space is back the next
#     capture takes every record exactly once;
#   * a read-only repository (a read-only bind mount; as root, chmod would
#     not stop ktape): capture and prune refuse it; ls, show, verify and
#     cat read it;
#   * a segment deleted under a running restore: the restore stops naming
#     the segment and writes no offset map; with the file back, the rerun
#     lands every record exactly once.
# Needs mount(8) permission (root); skipped with a message otherwise.
. "$(dirname "$0")/lib.sh"
require_cmd kcat jq mount umount

MOUNTS=()
# Unmount whatever this test mounted before lib.sh's cleanup removes $T.
_chaos_cleanup() {
	local rc=$? m
	# Without this, (exit "$rc") below would end the shell under set -e
	# before lib.sh's cleanup stops the sandboxes.
	set +e
	for m in "${MOUNTS[@]}"; do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
	(exit "$rc")
	_kt_cleanup
}
trap _chaos_cleanup EXIT
mount_tmpfs() { # DIR SIZE
	mkdir -p "$1"
	mount -t tmpfs -o "size=$2,mode=0700" tmpfs "$1" 2>"$T/mount.err" ||
		skip "cannot mount a tmpfs (needs root): $(cat "$T/mount.err")"
	MOUNTS+=("$1")
}

# Mounted first, so that a machine where mount is not permitted skips
# before anything is started.
FULL=$T/full
mount_tmpfs "$FULL" 2m
start_sandbox -n 1 --topic small:2 --topic big:2
capture() { # REPO ARGS...
	local repo=$1
	shift
	"$KTAPE" capture -b "$BOOTSTRAP" -r "$repo" --admin-timeout 200ms --no-progress "$@"
}
same_as_kafka() { # TOPIC REPO
	kcat_dump "$1" >"$T/$1.kcat"
	"$KTAPE" cat -r "$2" -t "$1" >"$T/$1.cat" || fail "ktape cat -t $1 failed"
	expect_same "$T/$1.kcat" "$T/$1.cat"
}
files_of() { (cd "$1" && find . -path ./lock -prune -o -type f -print | sort); }

# ---- the disk fills during a capture -------------------------------------------
REPO=$FULL/repo
"$KTAPE" gen -b "$BOOTSTRAP" -t small -n 500 --seed 1 >/dev/null || fail "gen failed"
capture "$REPO" -t small >/dev/null 2>"$T/cap1.err" || fail "the first capture failed: $(cat "$T/cap1.err")"
first=$(ls "$REPO/snapshots")
# About 4 MB of incompressible values: more than the tmpfs holds.
"$KTAPE" gen -b "$BOOTSTRAP" -t big -n 2000 --seed 2 --size 1800-2200 --compressibility 0 >/dev/null ||
	fail "gen failed"
rc=0
capture "$REPO" -t small -t big --segment-size 256K >"$T/full.out" 2>"$T/full.err" || rc=$?
[ "$rc" -ne 0 ] || fail "a capture onto a full disk exited 0"
grep -q 'No space left on device' "$T/full.err" || fail "the error does not say the disk is full: $(cat "$T/full.err")"
grep -q "$REPO" "$T/full.err" || fail "the error does not name where: $(cat "$T/full.err")"
[ "$(ls "$REPO/snapshots")" = "$first" ] || fail "a snapshot was committed onto the full disk: $(ls "$REPO/snapshots")"
[ -z "$(ls -A "$REPO/tmp")" ] || fail "the failed capture left temp files: $(ls -A "$REPO/tmp")"
"$KTAPE" verify -r "$REPO" --all >"$T/verify.out" 2>&1 || fail "the earlier snapshot does not verify: $(cat "$T/verify.out")"
pass "full disk: exit $rc, $(grep -m 1 'No space' "$T/full.err"); no snapshot committed, the earlier one verifies"
left=$(find "$REPO/segments/big" -name '*.kts' 2>/dev/null | wc -l)
note "segments of the failed capture left on disk: $left"

# An export onto the full disk fails and leaves no partial archive (the
# failed capture removed its unsealed segment: fill what that freed).
dd if=/dev/zero of="$FULL/fill" bs=4k 2>/dev/null || true
rc=0
"$KTAPE" export -r "$REPO" -o "$FULL/snap.tar" >"$T/export.out" 2>"$T/export.err" || rc=$?
rm -f "$FULL/fill"
[ "$rc" -eq 1 ] || fail "an export onto a full disk exited $rc: $(cat "$T/export.err")"
[ ! -e "$FULL/snap.tar" ] || fail "the failed export left $FULL/snap.tar"
pass "export onto a full disk: exit 1, no partial archive: $(head -n 1 "$T/export.err")"

# Space back (a tmpfs grows in place): the next capture takes everything.
mount -o remount,size=64m "$FULL" || fail "cannot grow the tmpfs"
capture "$REPO" -t small -t big >/dev/null 2>"$T/cap2.err" || fail "the capture after space came back failed: $(cat "$T/cap2.err")"
"$KTAPE" verify -r "$REPO" --all >"$T/verify.out" 2>&1 || fail "not clean after the rerun: $(cat "$T/verify.out")"
same_as_kafka small "$REPO"
same_as_kafka big "$REPO"
pass "with space back the next capture holds every record exactly once"
# The failed capture's sealed segments belong to no snapshot: prune, even
# with a policy that keeps every snapshot, deletes exactly those.
"$KTAPE" prune -r "$REPO" --keep-last 100 >/dev/null 2>"$T/prune.err" || fail "prune failed: $(cat "$T/prune.err")"
jq -r '.topics[].partitions[].segments[].path' "$REPO"/snapshots/*.json | sort -u >"$T/referenced"
(cd "$REPO" && find segments -name '*.kts' | sort) | cmp -s - "$T/referenced" ||
	fail "after prune the segments on disk are not exactly those the snapshots reference"
"$KTAPE" verify -r "$REPO" --all >"$T/verify.out" 2>&1 || fail "not clean after prune: $(cat "$T/verify.out")"
pass "prune removed the failed capture's $left unreferenced segment(s): $(tail -n 1 "$T/prune.err")"

# ---- a read-only repository ------------------------------------------------------
RO=$T/ro
mkdir -p "$RO"
mount --bind "$REPO" "$RO" 2>"$T/mount.err" || skip "cannot bind-mount: $(cat "$T/mount.err")"
MOUNTS=("$RO" "${MOUNTS[@]}")
mount -o remount,bind,ro "$RO" || fail "cannot make the bind mount read-only"
files_of "$RO" >"$T/ro.before"
"$KTAPE" gen -b "$BOOTSTRAP" -t small -n 100 --seed 3 >/dev/null || fail "gen failed"
rc=0
capture "$RO" -t small >"$T/ro.out" 2>"$T/ro.err" || rc=$?
[ "$rc" -eq 1 ] || fail "a capture into a read-only repository exited $rc: $(cat "$T/ro.err")"
grep -q 'Read-only file system' "$T/ro.err" && grep -q "$RO" "$T/ro.err" ||
	fail "the error does not say read-only and where: $(cat "$T/ro.err")"
pass "capture into a read-only repository: exit 1, $(head -n 1 "$T/ro.err")"
rc=0
"$KTAPE" prune -r "$RO" --keep-last 1 >"$T/ro.out" 2>"$T/ro.err" || rc=$?
[ "$rc" -ne 0 ] || fail "prune of a read-only repository exited 0"
grep -q 'Read-only file system' "$T/ro.err" || fail "prune does not say read-only: $(cat "$T/ro.err")"
pass "prune of a read-only repository: exit $rc, $(head -n 1 "$T/ro.err")"
files_of "$RO" | cmp -s - "$T/ro.before" || fail "the read-only repository changed"
"$KTAPE" ls -r "$RO" >/dev/null 2>"$T/ro.err" || fail "ls of a read-only repository failed: $(cat "$T/ro.err")"
"$KTAPE" show -r "$RO" >/dev/null 2>"$T/ro.err" || fail "show of a read-only repository failed: $(cat "$T/ro.err")"
"$KTAPE" verify -r "$RO" --all >/dev/null 2>"$T/ro.err" || fail "verify of a read-only repository failed: $(cat "$T/ro.err")"
"$KTAPE" cat -r "$RO" -t big >"$T/ro.cat" 2>"$T/ro.err" || fail "cat of a read-only repository failed: $(cat "$T/ro.err")"
cmp -s "$T/ro.cat" "$T/big.cat" || fail "cat reads a read-only repository differently"
pass "ls, show, verify and cat read a read-only repository"
umount "$RO"
MOUNTS=("${MOUNTS[@]:1}")

# ---- a segment deleted under a running restore ----------------------------------
# Many small segments, so the restore opens some only after it has begun.
SREPO=$T/segs
"$KTAPE" gen -b "$BOOTSTRAP" -t small -n 4000 --seed 4 --size 100-300 >/dev/null || fail "gen failed"
capture "$SREPO" -t small -z none --segment-size 64K --block-size 4K >/dev/null 2>"$T/cap3.err" ||
	fail "capture failed: $(cat "$T/cap3.err")"
kcat_dump small >"$T/small.src"
manifest=$(ls "$SREPO"/snapshots/*.json)
# The last segment of partition 1: read last when partitions go one by one,
# and late in its partition when they go together.
victim=$(jq -r '.topics[0].partitions[] | select(.partition == 1) | .segments[-1].path' "$manifest")
nsegs=$(jq '[.topics[0].partitions[].segments[]] | length' "$manifest")
note "$nsegs segments; deleting $victim under the restore"
start_sandbox -n 1 --topic small:2
DST=$BOOTSTRAP
total=$(wc -l <"$T/small.src")
(exec "$KTAPE" restore -b "$DST" -r "$SREPO" --no-progress --max-rate $((total / 3))) >"$T/del.out" 2>"$T/del.err" &
pid=$!
sleep 0.5
mv "$SREPO/$victim" "$T/victim.kts"
rc=0
wait "$pid" || rc=$?
rid=$(ls "$SREPO/restores")
if [ "$rc" -eq 0 ]; then
	# The reader had the file open before it was unlinked: a complete
	# restore from the open file is correct too.
	BOOTSTRAP=$DST kcat_dump small >"$T/small.dst"
	expect_same "$T/small.src" "$T/small.dst"
	note "the restore had opened $victim before it was deleted, and completed"
else
	grep -q "$(basename "$victim")" "$T/del.err" || fail "the error does not name the deleted segment: $(cat "$T/del.err")"
	[ "$(jq -r .state "$SREPO/restores/$rid/checkpoint.json")" = failed ] ||
		fail "the checkpoint does not say failed: $(cat "$SREPO/restores/$rid/checkpoint.json")"
	[ ! -e "$SREPO/restores/$rid/offsets.ktm" ] || fail "a failed restore wrote an offset map"
	pass "segment deleted under the restore: exit $rc, $(grep -m 1 "$(basename "$victim")" "$T/del.err")"
	rc=0
	"$KTAPE" verify -r "$SREPO" >"$T/verify.out" 2>&1 || rc=$?
	[ "$rc" -eq 3 ] && grep -q "$(basename "$victim")" "$T/verify.out" ||
		fail "verify does not report the missing segment (exit $rc): $(cat "$T/verify.out")"
	pass "verify reports the missing segment: exit 3"
	mv "$T/victim.kts" "$SREPO/$victim"
	"$KTAPE" restore -b "$DST" -r "$SREPO" --no-progress --json >"$T/rerun.json" 2>"$T/rerun.err" ||
		fail "the rerun with the segment back failed: $(cat "$T/rerun.err")"
	jq -e '.resumed' "$T/rerun.json" >/dev/null || fail "the rerun did not resume: $(cat "$T/rerun.json")"
	BOOTSTRAP=$DST kcat_dump small >"$T/small.dst"
	expect_same "$T/small.src" "$T/small.dst"
	pass "with the segment back, the rerun resumed and every record is in the target exactly once"
fi

# ---- restoring from a read-only repository ------------------------------------
# A restore keeps its record in REPO/restores/, so a read-only copy of a
# backup cannot be restored from as it is: it must fail clearly and send
# nothing (docs/disaster-recovery.md says to restore from a writable copy).
mkdir -p "$RO"
mount --bind "$SREPO" "$RO" || fail "cannot bind-mount"
MOUNTS=("$RO" "${MOUNTS[@]}")
mount -o remount,bind,ro "$RO" || fail "cannot make the bind mount read-only"
sandbox_ctl topic create ro_small:2 >/dev/null || fail "cannot create ro_small"
rc=0
"$KTAPE" restore -b "$DST" -r "$RO" --map small=ro_small --no-progress >"$T/ro.out" 2>"$T/ro.err" || rc=$?
if [ "$rc" -eq 0 ]; then
	BOOTSTRAP=$DST kcat_dump ro_small >"$T/ro.dst"
	expect_same --rename ro_small=small "$T/small.src" "$T/ro.dst"
	pass "restore from a read-only repository works"
else
	[ "$rc" -eq 1 ] && grep -q 'Read-only file system' "$T/ro.err" && grep -q "$RO/restores" "$T/ro.err" ||
		fail "restore from a read-only repository: exit $rc: $(cat "$T/ro.err")"
	[ "$(BOOTSTRAP=$DST kcat_dump ro_small | wc -l)" -eq 0 ] || fail "the refused restore sent records"
	pass "restore from a read-only repository is refused before sending anything: exit 1, $(head -n 1 "$T/ro.err")"
fi

# ---- the disk fills under a running restore -------------------------------------
# The restore's checkpoint (rewritten every second) can no longer be
# written: the restore stops naming the file; once space is back the rerun
# resumes and every record is in the target exactly once.
RFULL=$T/rfull
mount_tmpfs "$RFULL" 16m
umount "$RO"
MOUNTS=("${MOUNTS[@]:1}")
cp -a "$SREPO" "$RFULL/repo"
sandbox_ctl topic create full_small:2 >/dev/null || fail "cannot create full_small"
RESTORE=(restore -b "$DST" -r "$RFULL/repo" --map small=full_small --no-progress)
(exec "$KTAPE" "${RESTORE[@]}" --max-rate $((total / 3))) >"$T/rfull.out" 2>"$T/rfull.err" &
pid=$!
sleep 0.5
dd if=/dev/zero of="$RFULL/fill" bs=64k 2>/dev/null || true
rc=0
wait "$pid" || rc=$?
if [ "$rc" -eq 0 ]; then
	note "the restore finished before it had to write to the full disk"
else
	[ "$rc" -eq 1 ] && grep -q 'No space left on device' "$T/rfull.err" && grep -q "$RFULL/repo/restores/" "$T/rfull.err" ||
		fail "full disk under a restore: exit $rc: $(cat "$T/rfull.err")"
	[ -z "$(find "$RFULL/repo/restores" -name '*.tmp*')" ] || fail "the failed restore left temp files"
	pass "full disk under a restore: exit 1, $(head -n 1 "$T/rfull.err")"
fi
rm -f "$RFULL/fill"
"$KTAPE" "${RESTORE[@]}" >"$T/rfull2.out" 2>"$T/rfull2.err" || fail "the rerun with space back failed: $(cat "$T/rfull2.err")"
BOOTSTRAP=$DST kcat_dump full_small >"$T/full_small.dst"
expect_same --rename full_small=small "$T/small.src" "$T/full_small.dst"
pass "with space back the restore resumed and every record is in the target exactly once"
