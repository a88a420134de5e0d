# consumers/service.mk
#	  included by every service's Makefile after it sets PROGRAM and SRCS
#	  (and optionally EXTRA_LIBS, EXTRA_PKGS); builds todo-kafka-<service>
#	  from its handler and the runtime.
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

TOP = ../..
COMMON = $(TOP)/common
RUNTIME = $(TOP)/consumers/runtime
COMMON_LIB = $(COMMON)/libtodokafka_common.a
RUNTIME_LIB = $(RUNTIME)/libtkconsumer.a
VERSION = $(shell grep default_version $(TOP)/todo_kafka.control | sed "s/.*'\(.*\)'/\1/")

PKGS = rdkafka libcjson libmicrohttpd libcurl $(EXTRA_PKGS)
override CPPFLAGS += -D_GNU_SOURCE -I. -I$(RUNTIME) -I$(COMMON) -I$(shell $(PG_CONFIG) --includedir) \
	$(shell $(PKG_CONFIG) --cflags $(PKGS)) -DTK_VERSION="\"$(VERSION)\""
override CFLAGS += -std=gnu11 -pthread -MMD -MP $(PG_CFLAGS) $(EXTRA_CFLAGS)
LDLIBS = -L$(shell $(PG_CONFIG) --libdir) -lpq $(shell $(PKG_CONFIG) --libs $(PKGS)) -lpthread -lm

OBJS = $(SRCS:.c=.o)

all: $(PROGRAM)

$(PROGRAM): $(OBJS) $(EXTRA_LIBS) $(RUNTIME_LIB) $(COMMON_LIB)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(OBJS) $(EXTRA_LIBS) $(RUNTIME_LIB) $(COMMON_LIB) $(LDLIBS)

$(RUNTIME_LIB): FORCE
	$(MAKE) -C $(RUNTIME) PG_CONFIG=$(PG_CONFIG)

$(COMMON_LIB): FORCE
	$(MAKE) -C $(COMMON) PG_CONFIG=$(PG_CONFIG)

install: all
	$(INSTALL) -d $(DESTDIR)$(bindir)
	$(INSTALL) -m 755 $(PROGRAM) $(DESTDIR)$(bindir)/$(PROGRAM)

clean:
	rm -f $(PROGRAM) *.o *.d $(CLEAN_EXTRA)

.PHONY: all install clean FORCE

-include $(OBJS:.o=.d)
