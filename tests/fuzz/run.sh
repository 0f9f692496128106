#!/usr/bin/env bash
# Builds ktape's libFuzzer targets with clang and runs each for SECONDS.
#
#   tests/fuzz/run.sh SECONDS [TARGET...]
#
# The build lives in its own directory ($KT_FUZZ_BUILD, default
# build-fuzz-clang) with the whole store instrumented for coverage and
# checked by AddressSanitizer and UndefinedBehaviorSanitizer.  Each target
# starts from seeds taken where they are, in format/vectors (nothing is
# copied into the tree); the archive target's seeds are tar archives built
# here at run time from format/vectors/repo.  New inputs the fuzzer finds go
# to a corpus directory inside the build directory, so a later run resumes.
# Targets run one after another, so the machine keeps its other core.
#
# Exit status: 0 when every target ran its time without a finding; 1 when
# one crashed (its input is saved as crash-* in the build's fuzz-artifacts
# directory and the path printed); 77 when clang or libFuzzer is missing,
# which scripts/test reports as skipped.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

if [ $# -lt 1 ] || ! [[ $1 =~ ^[0-9]+$ ]] || [ "$1" -eq 0 ]; then
  echo "usage: tests/fuzz/run.sh SECONDS [fuzz_segment|fuzz_index|fuzz_manifest|fuzz_archive ...]" >&2
  exit 2
fi
seconds=$1
shift
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(fuzz_segment fuzz_index fuzz_manifest fuzz_archive)
fi

# libFuzzer ships in clang's runtime package; a link test is the only
# reliable way to know that it is there.
probe_dir=$(mktemp -d)
trap 'rm -rf "$probe_dir"' EXIT
printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
  'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
  'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' \
  > "$probe_dir/probe.c"
if ! command -v clang >/dev/null 2>&1 ||
   ! clang -fsanitize=fuzzer,address "$probe_dir/probe.c" -o "$probe_dir/probe" >/dev/null 2>&1; then
  echo "tests/fuzz/run.sh: skipped: no libFuzzer (needs clang and its runtime, e.g. libclang-rt-14-dev)" >&2
  exit 77
fi

build=${KT_FUZZ_BUILD:-build-fuzz-clang}
if [ ! -f "$build/build.ninja" ]; then
  CC=clang meson setup "$build" -Dfuzz=true --buildtype=debug -Doptimization=1 \
    -Db_sanitize=address,undefined -Db_lundef=false \
    -Dc_args='-fsanitize=fuzzer-no-link -fno-sanitize-recover=undefined' >/dev/null
fi
ninja -C "$build" "${targets[@]/#/tests/fuzz/}" >/dev/null

work=$root/$build/fuzz-work
mkdir -p "$work/artifacts" "$work/tmp"
vectors=$root/format/vectors

# Seed directories for the manifest and archive targets, rebuilt each run
# from the vectors (the manifests sit in per-repository directories, and
# libFuzzer reads only the top level of a corpus directory).
seeds=$work/seeds
rm -rf "$seeds"
mkdir -p "$seeds/manifest" "$seeds/archive"
for m in "$vectors"/repo/*/snapshots/*.json; do
  ln -s "$m" "$seeds/manifest/$(basename "$(dirname "$(dirname "$m")")").json"
done
for r in "$vectors"/repo/*/; do
  name=$(basename "$r")
  manifest=$(cd "$r" && ls snapshots/*.json 2>/dev/null | head -n 1) || true
  [ -n "$manifest" ] || continue
  id=$(basename "$manifest" .json)
  stage=$work/stage-$name
  rm -rf "$stage"
  mkdir -p "$stage"
  printf '{"format":"ktape-archive","version":1,"snapshot":"%s","repository_id":"fuzz","created_ms":0}\n' \
    "$id" > "$stage/ktape-archive.json"
  (cd "$r" && if [ -d segments ]; then find segments -type f | sort; fi) > "$stage/list"
  tar --format=pax -cf "$seeds/archive/$name.tar" \
    -C "$stage" ktape-archive.json -C "$r" -T "$stage/list" "$manifest"
  rm -rf "$stage"
done
zstd -q -c "$seeds/archive/valid.tar" > "$seeds/archive/valid.tar.zst"
gzip -c "$seeds/archive/valid.tar" > "$seeds/archive/valid.tar.gz"

declare -A corpus=(
  [fuzz_segment]="$vectors/segments"
  [fuzz_index]="$vectors/segments"
  [fuzz_manifest]="$seeds/manifest"
  [fuzz_archive]="$seeds/archive"
)
# Dictionaries: the words of a format, so mutations build documents.
declare -A dict=(
  [fuzz_manifest]="-dict=$root/tests/fuzz/manifest.dict"
)
status=0
for t in "${targets[@]}"; do
  if [ -z "${corpus[$t]:-}" ]; then
    echo "tests/fuzz/run.sh: unknown target $t" >&2
    exit 2
  fi
  mkdir -p "$work/corpus/$t"
  # New inputs go to the first directory; the seeds are only read.
  log=$work/$t.log
  echo "fuzz: $t for ${seconds}s" >&2
  if TMPDIR=$work/tmp \
     ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
     UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
     "$build/tests/fuzz/$t" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=3072 \
       -print_final_stats=1 -artifact_prefix="$work/artifacts/$t-" ${dict[$t]:-} \
       "$work/corpus/$t" "${corpus[$t]}" > "$log" 2>&1; then
    grep -E '^stat::number_of_executed_units|^Done|stat::peak_rss' "$log" | tr '\n' ' ' >&2
    echo >&2
  else
    status=1
    echo "fuzz: $t FAILED; last lines of $log:" >&2
    tail -n 40 "$log" >&2
    ls "$work/artifacts/$t-"* 2>/dev/null >&2 || true
  fi
done
exit $status
