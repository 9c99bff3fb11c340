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
