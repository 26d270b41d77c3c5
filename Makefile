# libcpg.so.4 (and its companion libcorosync_common.so.4) and libevs.so.4
# from the Rust staticlib: cargo builds the code, this file links the shared
# libraries with corosync's SONAMEs and symbol versions and nothing else
# exported.

CARGO    ?= cargo
CC       ?= cc
LD       ?= ld
OBJCOPY  ?= objcopy
BUILD    ?= build
PREFIX   ?= /usr/local
LIBDIR   ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include

RUST_LIB   := target/release/libcpg_rs.a
EXPORTS    := src/ffi/exports
# Native libraries the Rust standard library needs (rustc --print native-static-libs).
NATIVE_LIBS := -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc

CPG_SO     := $(BUILD)/lib/libcpg.so.4.1.0
COMMON_SO  := $(BUILD)/lib/libcorosync_common.so.4.0.0
EVS_SO     := $(BUILD)/lib/libevs.so.4.0.0
# An empty library with corosync 1.x's IPC library's SONAME, for old EVS
# binaries that list libcoroipcc.so.4 as NEEDED (docs/evs.md).
COROIPCC_SO := $(BUILD)/lib/libcoroipcc.so.4.0.0
LIBS       := $(CPG_SO) $(COMMON_SO) $(EVS_SO) $(COROIPCC_SO)

.PHONY: all rust deps demo examples bench check check-upstream check-rust check-abi check-c check-evs check-dropin check-install install clean \
        fuzz check-fuzz check-valgrind check-security check-cluster

# Servers the C suite runs against (see c-tests/run.sh --help).
C_SERVERS ?= corosync-shm,corosync-socket

all: $(LIBS)

rust:
	$(CARGO) build --release --locked

$(RUST_LIB): rust ;

# One relocatable object holding the whole archive, shared by both libraries.
$(BUILD)/obj/all.o: $(RUST_LIB)
	@mkdir -p $(@D)
	$(LD) -r --whole-archive $< -o $@.tmp && mv $@.tmp $@

# Keep only a library's exports global; everything else becomes local.
$(BUILD)/obj/%.o: $(BUILD)/obj/all.o $(EXPORTS)/%.syms
	$(OBJCOPY) --keep-global-symbols=$(EXPORTS)/$*.syms $< $@

# No version script: corosync's libcorosync_common has no symbol versions.
$(COMMON_SO): $(BUILD)/obj/libcorosync_common.o
	@mkdir -p $(@D)
	$(CC) -shared -o $@ $< -Wl,-soname,libcorosync_common.so.4 \
	    -Wl,--gc-sections -Wl,-z,now -Wl,-z,relro $(NATIVE_LIBS)
	ln -sf libcorosync_common.so.4.0.0 $(BUILD)/lib/libcorosync_common.so.4
	ln -sf libcorosync_common.so.4 $(BUILD)/lib/libcorosync_common.so

$(CPG_SO): $(BUILD)/obj/libcpg.o $(EXPORTS)/libcpg.versions $(COMMON_SO)
	@mkdir -p $(@D)
	$(CC) -shared -o $@ $< -Wl,-soname,libcpg.so.4 \
	    -Wl,--version-script=$(EXPORTS)/libcpg.versions \
	    -Wl,--gc-sections -Wl,-z,now -Wl,-z,relro \
	    -L$(BUILD)/lib -Wl,--no-as-needed -lcorosync_common $(NATIVE_LIBS)
	ln -sf libcpg.so.4.1.0 $(BUILD)/lib/libcpg.so.4
	ln -sf libcpg.so.4 $(BUILD)/lib/libcpg.so

# corosync 1.4's version script leaves the context pair unversioned.
$(EVS_SO): $(BUILD)/obj/libevs.o $(EXPORTS)/libevs.versions
	@mkdir -p $(@D)
	$(CC) -shared -o $@ $< -Wl,-soname,libevs.so.4 \
	    -Wl,--version-script=$(EXPORTS)/libevs.versions \
	    -Wl,--gc-sections -Wl,-z,now -Wl,-z,relro $(NATIVE_LIBS)
	ln -sf libevs.so.4.0.0 $(BUILD)/lib/libevs.so.4
	ln -sf libevs.so.4 $(BUILD)/lib/libevs.so

$(COROIPCC_SO):
	@mkdir -p $(@D)
	printf '' | $(CC) -shared -x c -o $@ - -Wl,-soname,libcoroipcc.so.4
	ln -sf libcoroipcc.so.4.0.0 $(BUILD)/lib/libcoroipcc.so.4

check: deps
	$(MAKE) check-rust check-abi check-install check-c check-evs check-dropin check-upstream \
	    check-security check-valgrind check-cluster check-fuzz

# Test dependencies (corosync, Debian's libcpg, iproute2), installed when missing.
deps:
	bash scripts/install-deps.sh

check-rust:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --locked --all-targets -- -D warnings
	$(CARGO) test --release --locked

check-abi: all
	sh c-tests/abi/check.sh
	bash scripts/check-symbols.sh

# Our server, shared-memory and socket IPC: admits nobody (uid 65534) as
# the corosync test config does; the quirks test asserts corosync defects
# that cpgd fixes by design (docs/server.md), so it runs against corosync
# only.
CPGD_TEST_CMD = $(CURDIR)/target/release/cpgd --allow-uid 65534

check-c: all
	bash c-tests/run.sh --server $(C_SERVERS) --lib ours,system
	CPGD_CMD="$(CPGD_TEST_CMD)" bash c-tests/run.sh --server cpgd --lib ours,system --exclude quirks $(BUILD)/c-tests-cpgd
	CPGD_CMD="$(CPGD_TEST_CMD) --ipc socket" bash c-tests/run.sh --server cpgd --lib ours,system --exclude quirks $(BUILD)/c-tests-cpgd-socket

# libevs on corosync (both IPC modes) and on cpgd (c-tests/evs), then on
# two corosync nodes in network namespaces (root; skipped visibly otherwise).
check-evs: all
	bash c-tests/run.sh --suite evs --server $(C_SERVERS)
	CPGD_CMD="$(CPGD_TEST_CMD)" bash c-tests/run.sh --suite evs --server cpgd $(BUILD)/c-tests-evs-cpgd
	bash c-tests/evs/twonode/run.sh $(BUILD)/c-tests-evs-twonode

# The drop-in proof: the same tests built against Debian's headers and
# linked with Debian's libcpg, then run unchanged on ours.
check-dropin: all
	@if [ -e /usr/include/corosync/cpg.h ] && [ -e /usr/lib/x86_64-linux-gnu/libcpg.so ]; then \
	    CPG_INCLUDE=/usr/include CPG_BUILD_LIBDIR=system \
	    bash c-tests/run.sh --server corosync-shm --lib ours $(BUILD)/c-tests-system; \
	else echo "SKIP: check-dropin needs Debian's libcpg-dev"; fi

examples: all
	@mkdir -p $(BUILD)/examples
	$(CC) -O2 -Wall -Iinclude -o $(BUILD)/examples/cpgdemo examples/cpgdemo.c -L$(BUILD)/lib -lcpg -lcorosync_common
	$(CC) -O2 -Wall -Iinclude -o $(BUILD)/examples/cpgprobe examples/cpgprobe.c -L$(BUILD)/lib -lcpg

# Build everything and run the example programs on our own server.
demo: examples
	bash scripts/demo.sh

# Throughput and latency, Debian's C libcpg vs ours, on corosync and cpgd
# (not part of make check; see docs/benchmarks.md).
bench: all
	bash bench/run.sh

# Installs the libraries with their symlinks, the headers and the
# pkg-config files under $(DESTDIR)$(PREFIX).
install: all
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR)/corosync
	install -m 0755 $(CPG_SO) $(COMMON_SO) $(EVS_SO) $(COROIPCC_SO) $(DESTDIR)$(LIBDIR)/
	ln -sf libcpg.so.4.1.0 $(DESTDIR)$(LIBDIR)/libcpg.so.4
	ln -sf libcpg.so.4 $(DESTDIR)$(LIBDIR)/libcpg.so
	ln -sf libevs.so.4.0.0 $(DESTDIR)$(LIBDIR)/libevs.so.4
	ln -sf libevs.so.4 $(DESTDIR)$(LIBDIR)/libevs.so
	ln -sf libcoroipcc.so.4.0.0 $(DESTDIR)$(LIBDIR)/libcoroipcc.so.4
	ln -sf libcorosync_common.so.4.0.0 $(DESTDIR)$(LIBDIR)/libcorosync_common.so.4
	ln -sf libcorosync_common.so.4 $(DESTDIR)$(LIBDIR)/libcorosync_common.so
	install -m 0644 include/corosync/*.h $(DESTDIR)$(INCLUDEDIR)/corosync/
	for pc in libcpg libcorosync_common libevs; do \
	    sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	        pkgconfig/$$pc.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/$$pc.pc; \
	done

# corosync's own test programs (Debian's corosync source package, fetched
# with apt at run time, never committed) and corosync-cpgtool: Debian's
# libcpg and ours must give the same outcome (c-tests/upstream/README.md).
check-upstream: all
	bash c-tests/upstream/run.sh

# Fuzz targets for every decoder fed by the other side (fuzz/, cargo-fuzz):
# each target runs FUZZ_SECONDS, one after the other; `make check` runs
# FUZZ_CHECK_SECONDS each. fuzz/run.sh --merge adds finds to fuzz/corpus/.
FUZZ_SECONDS ?= 30
FUZZ_CHECK_SECONDS ?= 15
fuzz:
	bash fuzz/run.sh --seconds $(FUZZ_SECONDS)

check-fuzz:
	bash fuzz/run.sh --seconds $(FUZZ_CHECK_SECONDS)

# Faults and load on a real 3-node corosync cluster (network namespaces)
# and on cpgd: node kill/restart, partition/heal, members killed mid-send,
# daemons killed under load, a flood against a slow receiver
# (c-tests/cluster/README.md, docs/reliability.md). Needs root.
check-cluster: all
	@if [ "$$(id -u)" = 0 ]; then bash c-tests/cluster/run.sh; \
	else echo "SKIP: check-cluster needs root (network namespaces, private corosync daemons)"; fi

# Part of the C suite under valgrind memcheck with our library (corosync,
# SHM): fails on any memory error or a definite leak in our library.
check-valgrind: all
	bash c-tests/valgrind.sh

# Admission (--allow-uid/--allow-gid) and server trust (CS_ERR_SECURITY),
# cpgd run as root and as nobody in private network namespaces.
check-security: all
	bash c-tests/security.sh

# Installs into a scratch tree and builds a program there with pkg-config.
check-install: all
	bash scripts/check-install.sh

clean:
	$(CARGO) clean
	rm -rf $(BUILD)
