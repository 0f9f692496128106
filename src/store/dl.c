/*
 * dl.c - loading a library on first use (dl_priv.h).
 */
#include "dl_priv.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

int kt_store_dl_load(const char *soname, const char *const *names, void *const *slots, size_t n,
		     char *why, size_t why_size)
{
	void *lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);

	if (!lib) {
		snprintf(why, why_size, "%s", dlerror());
		return -ENOSYS;
	}
	for (size_t i = 0; i < n; i++) {
		void *sym = dlsym(lib, names[i]);

		if (!sym) {
			snprintf(why, why_size, "%s has no %s", soname, names[i]);
			return -ENOSYS;
		}
		/* POSIX lets a dlsym() result convert to the function it
		 * names; memcpy keeps ISO C's object/function pointer rule
		 * quiet. */
		memcpy(slots[i], &sym, sizeof(sym));
	}
	/* The library stays loaded for the life of the process, as a linked
	 * one would. */
	return 0;
}
