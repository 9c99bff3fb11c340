# Makefile - builds the kvs_fdw extension with PGXS.
#
# The storage engine (src/engine/) is compiled into the module here with
# PGXS's flags plus -Werror.  It also builds alone, without any Postgres
# header, as a static library for its own tests: see src/engine/Makefile.
#
# The extension version lives in one place, kvs_fdw.control.

EXTENSION   = kvs_fdw
EXTVERSION := $(shell sed -n "s/^default_version *= *'\(.*\)'/\1/p" kvs_fdw.control)
MODULE_big  = kvs_fdw
# every install and upgrade script: CREATE EXTENSION ... VERSION and
# ALTER EXTENSION ... UPDATE need the old ones too
DATA        = $(wildcard kvs_fdw--*.sql)
PGFILEDESC  = "kvs_fdw - linear-hashing key-value file as a foreign table"

# the engine's source list is written once, in src/engine/sources.mk
include $(dir $(firstword $(MAKEFILE_LIST)))src/engine/sources.mk
ENGINE_OBJS = $(addprefix src/engine/,$(KVS_ENGINE_SRCS:.c=.o))

FDW_OBJS = \
	src/fdw/kvs_fdw.o \
	src/fdw/option.o \
	src/fdw/import.o \
	src/fdw/handle.o \
	src/fdw/rowcodec.o \
	src/fdw/planner.o \
	src/fdw/scan.o \
	src/fdw/modify.o \
	src/fdw/direct.o \
	src/fdw/pending.o \
	src/fdw/txn.o \
	src/fdw/functions.o \
	src/fdw/salvage.o \
	src/fdw/errors.o \
	src/fdw/alter.o \
	src/fdw/utility.o \
	src/fdw/orphans.o \
	src/fdw/shmem.o \
	src/fdw/rowlock.o \
	src/fdw/parallel.o

OBJS = $(ENGINE_OBJS) $(FDW_OBJS)

PG_CPPFLAGS = -I$(srcdir)/src/engine $(KVS_ENGINE_DEFS)
PG_CFLAGS   = -Werror
SHLIB_LINK  = -lxxhash

# pg_regress runs sql/*.sql in name order, except the other mode's own tests:
# those of shared mode need a server started with shared_preload_libraries =
# 'kvs_fdw', those of local mode one without (each 00_mode_* asserts
# kvs_fdw_mode(); 13_cache is the budget of a backend's own caches).
# make installcheck REGRESS_MODE=shared picks the shared list; test/run runs
# both, on temporary instances, and in the shared run uses
# expected/NAME_shared.out in place of expected/NAME.out where there is one.
REGRESS_MODE ?= local
REGRESS_OTHER = $(if $(filter shared,$(REGRESS_MODE)),local,shared)
REGRESS_ONLY_local  = 00_mode_local 13_cache
REGRESS_ONLY_shared = 00_mode_shared
REGRESS      = $(filter-out $(REGRESS_ONLY_$(REGRESS_OTHER)),$(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql))))

# the isolation tester's specs (specs/NAME.spec, expected/NAME.out): two and
# three sessions on one table (row locks); make installcheck runs them after
# pg_regress, into output_iso/
ISOLATION    = $(patsubst specs/%.spec,%,$(sort $(wildcard specs/*.spec)))

EXTRA_CLEAN = results regression.diffs regression.out tmp_check

# LLVM bitcode is not needed; keep builds quick and free of clang.
override with_llvm = no

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

.PHONY: engine
engine:
	$(MAKE) -C src/engine

# PGXS tracks no header dependencies: rebuild every object when a header
# changes (the tree is small; a stale object after a struct change crashes).
$(OBJS): $(wildcard $(srcdir)/src/engine/*.h $(srcdir)/src/fdw/*.h)
