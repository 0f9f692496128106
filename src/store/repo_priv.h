/*
 * repo_priv.h - private to src/store: what repo.c and manifest.c share.
 */
#ifndef KT_STORE_REPO_PRIV_H
#define KT_STORE_REPO_PRIV_H

/* Nonzero if id can be a snapshot id (format/repository.md section 3): 1 to
 * 63 bytes of [A-Za-z0-9._-], not starting with '.', so that "<id>.json"
 * can only ever name a file inside snapshots/. */
int kt_store_snapshot_id_valid(const char *id);

#endif /* KT_STORE_REPO_PRIV_H */
