# truto-lua: build, test and run the Truto groups module.
#   make demo        create a group on the bundled mock and print it
#   make test        the spec suite (installs what it needs first)
#   make LUA=lua5.1  build for another Lua (lua5.1 lua5.2 lua5.3 lua5.4 luajit)
# Everything else is listed by `make help`.

LUA      ?= lua5.4
BUILD    := build/$(LUA)
CORE     := $(BUILD)/truto/core.so
PREFIX   ?= /usr/local

ifeq ($(LUA),luajit)
  LUA_INC  := /usr/include/luajit-2.1
  LUA_ABI  := 5.1
else
  LUA_INC  := /usr/include/$(LUA)
  LUA_ABI  := $(patsubst lua%,%,$(LUA))
endif

CC       ?= gcc
WARN     := -std=c99 -Wall -Wextra -Werror -pedantic -Wmissing-prototypes -Wshadow
CFLAGS   ?= -O2 -g
ALL_CFLAGS := $(WARN) $(CFLAGS) -fPIC -D_POSIX_C_SOURCE=200809L -I$(LUA_INC) $(shell pkg-config --cflags libcurl 2>/dev/null)
LDLIBS   := $(shell pkg-config --libs libcurl 2>/dev/null || echo -lcurl) -lssl -lcrypto -lhiredis -lm

SRCS     := $(wildcard csrc/*.c)
OBJS     := $(patsubst csrc/%.c,$(BUILD)/obj/%.o,$(SRCS))

# What specs and the demo run with: this tree's Lua files and core.
RUN_ENV  := LUA_PATH="lua/?.lua;./?.lua;;" LUA_CPATH="$(BUILD)/?.so;;"

.PHONY: all deps build test test-https test-all check fuzz bench bench-fleet demo mock install lint clean help

all: $(CORE)
build: $(CORE)

$(BUILD)/obj/%.o: csrc/%.c csrc/*.h | $(BUILD)/obj
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(CORE): $(OBJS) | $(BUILD)/truto
	$(CC) -shared $(ALL_CFLAGS) $(OBJS) -o $@ $(LDLIBS)

$(BUILD)/obj $(BUILD)/truto:
	mkdir -p $@

# Every target installs what it needs first: `scripts/deps GROUP` (its
# header lists the groups); `make deps` installs them all.
deps:
	@scripts/deps

test:
	@scripts/deps test
	$(MAKE) --no-print-directory $(CORE)
	@$(RUN_ENV) LUA=$(LUA) scripts/run-specs $(SPECS)

demo:
	@scripts/deps core
	$(MAKE) --no-print-directory $(CORE)
	@$(RUN_ENV) $(LUA) examples/demo.lua

mock:
	@scripts/deps core
	@$(RUN_ENV) mock/run $(MOCK_ARGS)

# HTTPS at scale: 22,000 creates per protocol against nginx's default
# keepalive_requests (a GOAWAY every 1,000), no error, retry or duplicate.
test-https:
	@scripts/deps test
	$(MAKE) --no-print-directory $(CORE)
	@$(RUN_ENV) TRUTO_HTTPS_N=22000 TRUTO_HTTPS_KEEPALIVE=1000 LUA=$(LUA) scripts/run-specs spec/https_batch_spec.lua

# The same suite on every Lua (issue: runs everywhere Lua runs).
test-all:
	@scripts/deps all
	@scripts/test-all

# The suite under ASan+UBSan and under valgrind; fuzzers for a bounded time.
check:
	@scripts/deps check
	@scripts/check

FUZZ_SECONDS ?= 60
fuzz:
	@scripts/deps fuzz
	@FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz/run

# Side-by-side benchmark against the alternatives: HTTPS first (bench/https.lua),
# then plain http (bench/run); prints tables, writes CSV.
bench:
	@scripts/deps bench
	$(MAKE) --no-print-directory $(CORE)
	@$(RUN_ENV) lua5.4 bench/https.lua
	@$(RUN_ENV) bench/run

# The fleet benchmark: nginx, Lua processes and the CLI sharing one budget
# through Redis, against the rate-limited mock (bench/fleet.lua).
bench-fleet:
	@scripts/deps bench
	$(MAKE) --no-print-directory $(CORE)
	$(MAKE) --no-print-directory LUA=luajit CFLAGS='$(CFLAGS)' build
	@$(RUN_ENV) LUA=$(LUA) $(LUA) bench/fleet.lua

lint:
	@scripts/deps lint
	luacheck lua spec mock bin examples

LMOD := $(DESTDIR)$(PREFIX)/share/lua/$(LUA_ABI)
CMOD := $(DESTDIR)$(PREFIX)/lib/lua/$(LUA_ABI)
install: $(CORE)
	install -d $(CMOD)/truto $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 644 $(CORE) $(CMOD)/truto/core.so
	cd lua && find . -name '*.lua' | while read -r f; do \
	  install -D -m 644 "$$f" "$(LMOD)/$$f" || exit 1; done
	@# truto-groups runs on Lua 5.4 only (#!/usr/bin/env lua5.4): with any
	@# other Lua the library is installed and the command is not
	@if [ "$(LUA_ABI)" = 5.4 ]; then \
	  install -m 755 bin/truto-groups $(DESTDIR)$(PREFIX)/bin/truto-groups && \
	  install -m 644 man/truto-groups.1 $(DESTDIR)$(PREFIX)/share/man/man1/truto-groups.1; \
	else echo "truto-groups not installed: it runs on Lua 5.4 only (make install LUA=lua5.4)"; fi

clean:
	rm -rf build

help:
	@sed -n '1,6p' Makefile
