# consumers/service.mk
#	  included by every service's Makefile after it sets PROGRAM and SRCS
#	  (and optionally EXTRA_LIBS, EXTRA_PKGS); builds todo-kafka-<service>
#	  from its handler and the runtime (consumers/runtime/libtkconsumer.a)
#	  on the common library (common/program.mk does the rest).

TOP = ../..
RUNTIME = $(TOP)/consumers/runtime
RUNTIME_LIB = $(RUNTIME)/libtkconsumer.a
EXTRA_INCLUDES += -I$(RUNTIME)
EXTRA_LIBS += $(RUNTIME_LIB)

include $(TOP)/common/program.mk

$(RUNTIME_LIB): FORCE
	$(MAKE) -C $(RUNTIME) PG_CONFIG=$(PG_CONFIG)
