# src/engine/sources.mk - the engine's source files, the one list of them.
#
# Included by the top Makefile (the engine compiled into the extension),
# src/engine/Makefile (libkvs.a for the engine's own tests and the bench) and
# test/engine/Makefile (the libFuzzer targets, built from source).  A new
# engine file goes here, one name a line; test/meta.sh checks that every
# src/engine/*.c is listed.

KVS_ENGINE_SRCS := \
	os.c \
	err.c \
	header.c \
	pager.c \
	spill.c \
	undo.c \
	filelock.c \
	pool.c \
	dir.c \
	page.c \
	vchain.c \
	lhash.c \
	kvs.c \
	salvage.c \
	compact.c \
	journal.c

# Compile-time definitions every build of the engine's sources adds to its
# flags.  KVS_HAVE_XXH3_DISPATCH: libxxhash has XXH3's run-time dispatched
# entry (pager.c's page checksum uses it, else the plain XXH3), decided by
# linking probe/xxh3_dispatch.c against the library, not by the header alone.
KVS_ENGINE_DIR  := $(dir $(lastword $(MAKEFILE_LIST)))
KVS_ENGINE_DEFS := $(shell $(CC) $(KVS_ENGINE_DIR)probe/xxh3_dispatch.c -o /dev/null -lxxhash \
	>/dev/null 2>&1 && echo -DKVS_HAVE_XXH3_DISPATCH)
