#!/usr/bin/env bash
# The CI form of tests/chaos/crashloop.sh: 10 seeded SIGKILLs of ktape
# capture and 10 of ktape restore, each rerun, then every record exactly
# once in the snapshot chain (ktape cat against kcat, ktape verify --all)
# and in the restored cluster (kcat against kcat).  Prune's kill loop is
# tests/integration/test_tools_prune.sh; the long form (50 kills of each,
# prune and capture --follow included) is run by hand:
#     KTAPE=build/ktape tests/chaos/crashloop.sh --kills 50 --seed 1
exec bash "${KT_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/chaos/crashloop.sh" \
	--kills 10 --seed 2 --chunk 1000 --commands capture,restore
