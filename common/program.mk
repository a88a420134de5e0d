# common/program.mk
#	  included by the Makefile of a program built on the common library
#	  (tools/dlq, and every consumer service through consumers/service.mk)
#	  after it sets PROGRAM, SRCS and TOP (the repository root, relative),
#	  and optionally EXTRA_LIBS (static libraries linked before the common
#	  one, with their rules), EXTRA_PKGS, EXTRA_INCLUDES, CLEAN_EXTRA.
#
#	  make / make install [DESTDIR=...] [PREFIX=...] / make clean
#
# CI adds warnings through EXTRA_CFLAGS or PG_CFLAGS, e.g.
# EXTRA_CFLAGS="-Wall -Wextra -Werror -Wno-unused-parameter"; none is hard-coded.

CC ?= cc
CFLAGS ?= -O2 -g -Wall -Wextra
PG_CONFIG ?= pg_config
PKG_CONFIG ?= pkg-config
PREFIX ?= /usr/local
bindir ?= $(PREFIX)/bin
INSTALL ?= install

COMMON = $(TOP)/common
COMMON_LIB = $(COMMON)/libtodokafka_common.a
VERSION = $(shell grep default_version $(TOP)/todo_kafka.control | sed "s/.*'\(.*\)'/\1/")

PKGS = rdkafka libcjson libmicrohttpd libcurl $(EXTRA_PKGS)
override CPPFLAGS += -D_GNU_SOURCE -I. $(EXTRA_INCLUDES) -I$(COMMON) -I$(shell $(PG_CONFIG) --includedir) \
	$(shell $(PKG_CONFIG) --cflags $(PKGS)) -DTK_VERSION="\"$(VERSION)\""
override CFLAGS += -std=gnu11 -pthread -MMD -MP $(PG_CFLAGS) $(EXTRA_CFLAGS)
LDLIBS = -L$(shell $(PG_CONFIG) --libdir) -lpq $(shell $(PKG_CONFIG) --libs $(PKGS)) -lpthread -lm

OBJS = $(SRCS:.c=.o)

all: $(PROGRAM)

$(PROGRAM): $(OBJS) $(EXTRA_LIBS) $(COMMON_LIB)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(OBJS) $(EXTRA_LIBS) $(COMMON_LIB) $(LDLIBS)

$(COMMON_LIB): FORCE
	$(MAKE) -C $(COMMON) PG_CONFIG=$(PG_CONFIG)

install: all
	$(INSTALL) -d $(DESTDIR)$(bindir)
	$(INSTALL) -m 755 $(PROGRAM) $(DESTDIR)$(bindir)/$(PROGRAM)

clean:
	rm -f $(PROGRAM) *.o *.d $(CLEAN_EXTRA)

.PHONY: all install clean FORCE

-include $(OBJS:.o=.d)
