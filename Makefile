# todo_kafka top-level Makefile (PGXS).
#
# The extension (extension/*.c, install and upgrade scripts) builds with PGXS;
# the frontend programs (devbroker/, relay/, with common/) have their own
# Makefiles and are delegated to from all/install/clean.
#
#   make                 build everything
#   make install         install the extension and the programs
#   make installcheck    pg_regress + isolation tests against a running server
#   make check-tap       TAP tests (tests/*.pl: unit and end to end) under prove

EXTENSION = todo_kafka
EXTVERSION = $(shell grep default_version $(EXTENSION).control | sed "s/.*'\(.*\)'/\1/")

MODULE_big = todo_kafka
OBJS = $(patsubst %.c,%.o,$(wildcard extension/*.c))
# the install script of the current version is built from the concern
# files of extension/sql/ in name order (pgvector's layout); the upgrade
# scripts todo_kafka--A--B.sql and the 0.1.0 install script (the start of
# the upgrade chain that sql/upgrade.sql tests) are frozen
CURRENT_SCRIPT = extension/todo_kafka--$(EXTVERSION).sql
DATA = $(filter-out $(CURRENT_SCRIPT),$(wildcard extension/todo_kafka--*.sql))
DATA_built = $(CURRENT_SCRIPT)

REGRESS = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = --load-extension=todo_kafka
ISOLATION = $(patsubst specs/%.spec,%,$(sort $(wildcard specs/*.spec)))
ISOLATION_OPTS = --load-extension=todo_kafka

PG_CPPFLAGS += -DTODO_KAFKA_VERSION="\"$(EXTVERSION)\""

# in build order; a directory joins once it has a Makefile
FRONTEND_DIRS = $(patsubst %/Makefile,%,$(wildcard common/Makefile devbroker/Makefile relay/Makefile consumers/Makefile tools/dlq/Makefile))

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)

all: frontend $(CURRENT_SCRIPT)

# rebuilt whenever its parts changed, were added or removed (not only when
# one is newer): written to a temporary file and moved over only if different
$(CURRENT_SCRIPT): FORCE
	@cat $(sort $(wildcard extension/sql/*.sql)) > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi

.PHONY: FORCE
FORCE:
install: install-frontend
clean: clean-frontend

include $(PGXS)

.PHONY: frontend install-frontend clean-frontend check-tap

frontend:
	@for d in $(FRONTEND_DIRS); do $(MAKE) -C $$d PG_CONFIG=$(PG_CONFIG) all || exit 1; done

install-frontend:
	@for d in $(FRONTEND_DIRS); do $(MAKE) -C $$d PG_CONFIG=$(PG_CONFIG) install || exit 1; done

clean-frontend:
	@for d in $(FRONTEND_DIRS); do $(MAKE) -C $$d clean || exit 1; done
	rm -rf tmp_check

# End-to-end tests: every tests/NNN_*.pl starts its own PostgreSQL and devbroker.
PROVE_TESTS = $(or $(TESTS),tests/*.pl)
check-tap: PROVE_FLAGS += -I $(CURDIR)/tests/lib --timer
check-tap: frontend
	$(prove_installcheck)
