# The C operator API and the C operator runtime (included by ../Makefile).
#
#   build/libdora_operator_api_c.a        what an operator links (-ldora_operator_api_c): the functions it calls
#   build/dora-runtime                    the process that runs a node's C operators
#   build/pkgconfig/dora-operator-api.pc  pkg-config --cflags --libs dora-operator-api
#
# The runtime links libdora_node_api.so (found next to it: rpath $ORIGIN) and exports the
# operator-facing functions (exports.list) for operators linked without the archive.

OPERATOR_HEADERS := include/operator_api.h include/operator_types.h operator/abi.h operator/host.h
OPERATOR_CFLAGS := $(WARNINGS) $(CFLAGS) -D_GNU_SOURCE -fPIC -Iinclude

$(BUILD)/obj/operator/%.o: operator/%.c $(OPERATOR_HEADERS) include/dora_node_api.h
	@mkdir -p $(dir $@)
	$(CC) $(OPERATOR_CFLAGS) -c $< -o $@

$(BUILD)/libdora_operator_api_c.a: $(BUILD)/obj/operator/api.o
	rm -f $@
	ar rcs $@ $^

$(BUILD)/dora-runtime: $(BUILD)/obj/operator/runtime.o $(BUILD)/obj/operator/host.o $(BUILD)/obj/operator/api.o $(BUILD)/libdora_node_api.so operator/exports.list
	$(CC) $(CFLAGS) $(filter %.o,$^) -o $@ -L$(BUILD) -ldora_node_api -Wl,-rpath,'$$ORIGIN' -Wl,--dynamic-list=operator/exports.list -ldl -lpthread

$(BUILD)/pkgconfig/dora-operator-api.pc: operator/dora-operator-api.pc.in operator/operator.mk
	@mkdir -p $(dir $@)
	sed -e 's|@INCLUDEDIR@|$(CURDIR)/include|' -e 's|@LIBDIR@|$(abspath $(BUILD))|' -e 's|@VERSION@|$(VERSION)|' $< > $@

operator: $(BUILD)/libdora_operator_api_c.a $(BUILD)/dora-runtime $(BUILD)/pkgconfig/dora-operator-api.pc

install-operator: operator
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 include/operator_api.h include/operator_types.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(BUILD)/libdora_operator_api_c.a $(DESTDIR)$(PREFIX)/lib/
	sed -e 's|@INCLUDEDIR@|$(PREFIX)/include|' -e 's|@LIBDIR@|$(PREFIX)/lib|' -e 's|@VERSION@|$(VERSION)|' operator/dora-operator-api.pc.in \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/dora-operator-api.pc
	install -d $(DESTDIR)$(PREFIX)/lib/cmake/dora-operator-api-c
	install -m 644 cmake/dora-operator-api-c-config.cmake $(DESTDIR)$(PREFIX)/lib/cmake/dora-operator-api-c/
	sed -e 's|@VERSION@|$(VERSION)|' -e 's|@MAJOR@|$(SOMAJOR)|' cmake/config-version.cmake.in > $(DESTDIR)$(PREFIX)/lib/cmake/dora-operator-api-c/dora-operator-api-c-config-version.cmake

# Part of the usual targets.
all: operator
install: install-operator

.PHONY: operator install-operator
