# mod_auth_eid - build, test, demo, install.
#   make            build the core library and the module
#   make deps       install every build/test dependency (Debian, apt-get; idempotent)
#   make test       unit (+valgrind, +ThreadSanitizer) + fuzz-corpus replay + httpd suite (+ again with ASan)
#   make demo       run httpd with the module protecting a demo service on loopback
#   make install    install the module and auth_eid.load/.conf (a2enmod auth_eid)
SHELL := /bin/bash
.DEFAULT_GOAL := all

CC      ?= cc
CLANG   ?= clang
APXS    ?= apxs
PYTHON  := /usr/bin/python3
B       := build

PKGS      := apr-1 apr-util-1 openssl jansson cjose libcurl hiredis
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
WARN      := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
# The core never sees the httpd include path: it must build without it.
CORE_CFLAGS = -std=c11 -D_GNU_SOURCE -O2 -g -fPIC -fstack-protector-strong \
              -D_FORTIFY_SOURCE=2 $(WARN) -Iinclude $(PKG_CFLAGS) $(EXTRA_CFLAGS)

CORE_SRCS := $(sort $(wildcard mod_src/core/*.c))
CORE_OBJS := $(CORE_SRCS:mod_src/core/%.c=$(B)/core/%.o)
CORE_LIB  := $(B)/libeidcore.a
GLUE_SRCS := $(sort $(wildcard mod_src/apache/*.c))
GLUE_HDRS := $(wildcard mod_src/apache/*.h)
MODULE    := $(B)/mod_auth_eid.so

DEPS_PKGS := build-essential pkg-config clang libclang-rt-14-dev valgrind \
  apache2 apache2-dev libssl-dev libapr1-dev libaprutil1-dev libjansson-dev \
  libcjose-dev liboauth2-dev libhiredis-dev libcurl4-openssl-dev libcmocka-dev \
  redis-server redis-sentinel curl openssl python3 python3-pytest python3-requests \
  python3-cryptography python3-jwcrypto chromium chromium-driver python3-selenium

.PHONY: all deps test test-unit test-tsan test-ubsan test-fuzz test-op test-httpd test-valgrind test-asan asan demo install \
        clean pki check-docs fuzz bench

all: $(MODULE)

deps:
	@missing=""; for p in $(DEPS_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "all dependencies present"; fi
	@# mod_ssl from the archive warns (AH01882) when libssl3 is older than the one it
	@# was built against: keep OpenSSL at the archive's version.
	@for p in libssl3 libssl-dev openssl; do \
	  inst=$$(dpkg-query -W -f='$${Version}' $$p 2>/dev/null); \
	  cand=$$(apt-cache policy $$p 2>/dev/null | awk '/Candidate:/ {print $$2}'); \
	  if [ -n "$$cand" ] && [ "$$cand" != "(none)" ] && [ "$$inst" != "$$cand" ]; then \
	    echo "upgrading $$p $$inst -> $$cand"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --only-upgrade $$p || exit 1; \
	  fi; done

$(B)/core/%.o: mod_src/core/%.c $(wildcard include/eid/*.h mod_src/core/*.h) | $(B)/core
	$(CC) $(CORE_CFLAGS) -c $< -o $@

$(B)/core:
	mkdir -p $@

$(CORE_LIB): $(CORE_OBJS)
	rm -f $@ && ar rcs $@ $^

# The glue is compiled by apxs (httpd's own flags and include path) and
# linked with the core library.
$(MODULE): $(GLUE_SRCS) $(GLUE_HDRS) $(CORE_LIB)
	@mkdir -p $(B)/apache
	cp $(GLUE_SRCS) $(GLUE_HDRS) $(B)/apache/
	cd $(B)/apache && $(APXS) -c -o mod_auth_eid.la \
	  -Wc,-std=gnu11 $(foreach w,$(WARN),-Wc,$(w)) $(APXS_EXTRA) -I$(CURDIR)/include \
	  $(notdir $(GLUE_SRCS)) $(CURDIR)/$(CORE_LIB) $(PKG_LIBS) > apxs.log 2>&1 \
	  || { cat apxs.log; exit 1; }
	@# copy then rename: a running httpd keeps the file it mapped intact
	cp $(B)/apache/.libs/mod_auth_eid.so $@.tmp && mv -f $@.tmp $@

# TEST ONLY, never installed: a module driving the shm session store
# (eid_store_socache.c) from HTTP requests, for tests/httpd/test_store_shm.py.
# -Bsymbolic: mod_auth_eid.so (loaded first, RTLD_GLOBAL) exports the same
# eid_store_* functions; without it this module would run mod_auth_eid's copies.
STORE_TEST_MOD := $(B)/mod_eid_store_test.so
$(STORE_TEST_MOD): tests/httpd/mod_eid_store_test.c mod_src/apache/eid_store_socache.c \
                   mod_src/apache/eid_store_socache.h $(CORE_LIB)
	@mkdir -p $(B)/store_test
	cp $(filter %.c %.h,$^) $(B)/store_test/
	cd $(B)/store_test && $(APXS) -c -o mod_eid_store_test.la \
	  -Wc,-std=gnu11 $(foreach w,$(WARN),-Wc,$(w)) $(APXS_EXTRA) -I$(CURDIR)/include \
	  -Wc,-DEID_STORE_SOCACHE_MODULE=eid_store_test -Wc,-DEID_STORE_SOCACHE_TEST_SEAM -Wl,-Wl\,-Bsymbolic \
	  mod_eid_store_test.c eid_store_socache.c $(CURDIR)/$(CORE_LIB) $(PKG_LIBS) > apxs.log 2>&1 \
	  || { cat apxs.log; exit 1; }
	cp $(B)/store_test/.libs/mod_eid_store_test.so $@.tmp && mv -f $@.tmp $@

# TEST ONLY, never installed: reads and writes mod_auth_eid's own session
# store (shared revocation answers) for tests/httpd/test_revocation_share.py.
# No store code of its own: its eid_* symbols are mod_auth_eid.so's (loaded
# first, RTLD_GLOBAL), hence no core library here.
REV_TEST_MOD := $(B)/mod_eid_rev_test.so
$(REV_TEST_MOD): tests/httpd/mod_eid_rev_test.c $(GLUE_HDRS)
	@mkdir -p $(B)/rev_test
	cp tests/httpd/mod_eid_rev_test.c $(B)/rev_test/
	cd $(B)/rev_test && $(APXS) -c -o mod_eid_rev_test.la \
	  -Wc,-std=gnu11 $(foreach w,$(WARN),-Wc,$(w)) -I$(CURDIR)/include -I$(CURDIR)/mod_src/apache \
	  mod_eid_rev_test.c > apxs.log 2>&1 || { cat apxs.log; exit 1; }
	cp $(B)/rev_test/.libs/mod_eid_rev_test.so $@.tmp && mv -f $@.tmp $@

# ---- test PKI -------------------------------------------------------------
$(B)/eid-mkcert: tests/pki/eid-mkcert.c
	@mkdir -p $(B)
	$(CC) -std=c11 -D_GNU_SOURCE -O1 -g $(WARN) $< -o $@ -lcrypto

pki: $(B)/pki/.done
$(B)/pki/.done: tests/pki/mkpki.sh $(B)/eid-mkcert
	tests/pki/mkpki.sh $(B)/eid-mkcert $(B)/pki
	@# PKCS#12 bundles for importing demo users into a browser (password: demo)
	for u in nurse-kommun doctor-region citizen; do \
	  openssl pkcs12 -export -passout pass:demo -name "$$u" -in $(B)/pki/users/$$u.pem \
	    -inkey $(B)/pki/users/$$u.key -certfile $(B)/pki/ca/client-trust.pem \
	    -out $(B)/pki/users/$$u.p12; done
	touch $@

# ---- unit tests (cmocka) ------------------------------------------------------
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(B)/unit/%)

$(B)/unit/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(CORE_LIB)
	@mkdir -p $(B)/unit
	$(CC) $(CORE_CFLAGS) -Itests/unit $< -o $@ $(CORE_LIB) $(PKG_LIBS) -lcmocka

# A unit test that hangs (a lock-up under a race) fails after 300 s.
test-unit: $(UNIT_BINS) pki
	@set -e; for t in $(UNIT_BINS); do \
	  echo "== $$t"; EID_PKI=$(B)/pki timeout 300 $$t; done

# The core and every unit test built with ThreadSanitizer in their own build
# dir; the first report fails the run (halt_on_error; exit code 66).
TSAN_FLAGS := -fsanitize=thread -fno-omit-frame-pointer
test-tsan: pki
	$(MAKE) B=$(B)/tsan EXTRA_CFLAGS="$(TSAN_FLAGS) -U_FORTIFY_SOURCE" \
	  $(UNIT_SRCS:tests/unit/%.c=$(B)/tsan/unit/%)
	@set -e; for t in $(UNIT_SRCS:tests/unit/%.c=$(B)/tsan/unit/%); do \
	  echo "== tsan $$t"; EID_PKI=$(B)/pki TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1 suppressions=$(CURDIR)/tests/unit/tsan.supp" \
	    timeout 600 $$t > $$t.log 2>&1 || { cat $$t.log; exit 1; }; \
	  ! grep -q "ThreadSanitizer" $$t.log || { cat $$t.log; exit 1; }; done; echo "tsan: clean"

# The same with UndefinedBehaviorSanitizer (signed overflow, shifts, misaligned
# or out-of-bounds accesses ...): any runtime error fails the run.
UBSAN_FLAGS := -fsanitize=undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
test-ubsan: pki
	$(MAKE) B=$(B)/ubsan EXTRA_CFLAGS="$(UBSAN_FLAGS)" \
	  $(UNIT_SRCS:tests/unit/%.c=$(B)/ubsan/unit/%)
	@set -e; for t in $(UNIT_SRCS:tests/unit/%.c=$(B)/ubsan/unit/%); do \
	  echo "== ubsan $$t"; EID_PKI=$(B)/pki UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
	    timeout 600 $$t > $$t.log 2>&1 || { cat $$t.log; exit 1; }; \
	  ! grep -q "runtime error" $$t.log || { cat $$t.log; exit 1; }; done; echo "ubsan: clean"

test-valgrind: $(UNIT_BINS) pki
	@set -e; for t in $(UNIT_BINS); do \
	  EID_PKI=$(B)/pki valgrind -q --error-exitcode=9 --leak-check=full \
	    --errors-for-leak-kinds=definite $$t > /dev/null; done; echo "valgrind: clean"

# ---- fuzz targets (libFuzzer), seed corpora replayed in make test -------------
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(B)/fuzz/%)
FUZZ_CFLAGS = -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
              -fno-sanitize-recover=undefined -Iinclude $(PKG_CFLAGS)

$(B)/fuzz/%: tests/fuzz/%.c $(CORE_SRCS) $(wildcard include/eid/*.h)
	@mkdir -p $(B)/fuzz
	$(CLANG) $(FUZZ_CFLAGS) $< $(CORE_SRCS) -o $@ $(PKG_LIBS)

test-fuzz: $(FUZZ_BINS)
	@# The replay's own status decides (a pipe into tail would hide a crash).
	@set -e; for f in $(FUZZ_BINS); do n=$$(basename $$f); \
	  echo "== replay $$n"; \
	  if ! $$f -runs=0 tests/fuzz/corpus/$$n > $(B)/fuzz-replay-$$n.log 2>&1; then \
	    tail -40 $(B)/fuzz-replay-$$n.log; echo "FAILED: replay $$n"; exit 1; fi; \
	  tail -1 $(B)/fuzz-replay-$$n.log; done

# Long fuzzing run (not part of make test): FUZZ_SECONDS per target.
FUZZ_SECONDS ?= 300
fuzz: $(FUZZ_BINS)
	@set -e; for f in $(FUZZ_BINS); do n=$$(basename $$f); mkdir -p $(B)/fuzz-corpus/$$n; \
	  $$f -max_total_time=$(FUZZ_SECONDS) $(B)/fuzz-corpus/$$n tests/fuzz/corpus/$$n; done

# ---- httpd suite (pytest, real httpd + mod_ssl) -----------------------------
test-httpd: $(MODULE) $(STORE_TEST_MOD) $(REV_TEST_MOD) pki
	$(PYTHON) -m pytest -q -p no:cacheprovider tests/httpd

# The real-browser login test alone (headless Chromium through chromedriver; it is also
# part of test-httpd). certutil (libnss3-tools) makes that browser trust the test CA.
DEPS_PKGS += libnss3-tools
.PHONY: test-browser
test-browser: $(MODULE) pki
	$(PYTHON) -m pytest -q -p no:cacheprovider tests/httpd/test_browser.py

# The same httpd suite with the module (core + glue) built with AddressSanitizer,
# libasan preloaded into httpd; any ASan report fails the test that caused it.
ASAN_FLAGS := -fsanitize=address -fno-omit-frame-pointer
asan:
	$(MAKE) B=$(B)/asan EXTRA_CFLAGS="$(ASAN_FLAGS) -U_FORTIFY_SOURCE" \
	  APXS_EXTRA="$(foreach f,$(ASAN_FLAGS),-Wc,$(f)) -Wl,-fsanitize=address" \
	  $(B)/asan/mod_auth_eid.so $(B)/asan/mod_eid_store_test.so
test-asan: asan $(REV_TEST_MOD) pki
	EID_MODULE=$(CURDIR)/$(B)/asan/mod_auth_eid.so EID_ASAN=1 \
	  EID_STORE_TEST_MODULE=$(CURDIR)/$(B)/asan/mod_eid_store_test.so \
	  $(PYTHON) -m pytest -q -p no:cacheprovider tests/httpd

# The test OpenID Provider's own selftest (it serves the bearer-token tests).
test-op:
	$(PYTHON) -m pytest -q -p no:cacheprovider tests/op

check-docs:
	$(PYTHON) tests/check_docs.py

test: all check-docs test-unit test-tsan test-ubsan test-valgrind test-fuzz test-op test-httpd test-asan

# ---- demo, install -----------------------------------------------------------
demo: deps $(MODULE) pki
	$(PYTHON) demo/demo.py $(DEMO_ARGS)

LIBEXECDIR = $(shell $(APXS) -q LIBEXECDIR)
SYSCONFDIR = $(shell $(APXS) -q SYSCONFDIR)
install: $(MODULE)
	install -D -m 0644 $(MODULE) $(DESTDIR)$(LIBEXECDIR)/mod_auth_eid.so
	install -D -m 0644 conf-samples/auth_eid.load $(DESTDIR)$(SYSCONFDIR)/mods-available/auth_eid.load
	install -D -m 0644 conf-samples/auth_eid.conf $(DESTDIR)$(SYSCONFDIR)/mods-available/auth_eid.conf

bench: $(MODULE) pki
	$(MAKE) -C bench

clean:
	rm -rf $(B)
