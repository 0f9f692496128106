/*
 * dl_priv.h - libraries the store loads on first use instead of linking
 * (private to src/store).
 *
 * libcurl (s3.c) and libarchive (archive.c) bring 34 of the 49 shared
 * objects ktape would otherwise load at every start, for the few commands
 * that touch object storage or a tar file; each is loaded once, when
 * first needed, and stays loaded.  The prototypes still come from the
 * build's headers (pkg-config): a caller keeps a pointer per function,
 * typed with __typeof__ of the declared function.
 */
#ifndef KT_STORE_DL_PRIV_H
#define KT_STORE_DL_PRIV_H

#include <stddef.h>

/* dlopen()s soname and resolves names[i] into the function pointer that
 * slots[i] points to, for i < n.  0, or -ENOSYS with why saying what was
 * missing (dlerror()'s text or the symbol).  Not thread-safe: callers run
 * it under pthread_once(). */
int kt_store_dl_load(const char *soname, const char *const *names, void *const *slots, size_t n,
		     char *why, size_t why_size);

#endif /* KT_STORE_DL_PRIV_H */
