/*
 * signals.h - core.signals: a job learns that SIGINT, SIGTERM or SIGHUP
 * arrived and stops on its own terms (see signals.c).
 */
#ifndef TRUTO_SIGNALS_H
#define TRUTO_SIGNALS_H

#include "compat.h"

/* The core's own names stay inside core.so: a host that exports the same
 * names (Neovim exports lua-cjson's strbuf_init) must never be called in
 * their place. Only luaopen_truto_core (core.c) is exported. */
#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* Sets core.signals on the table at the top of the stack. */
void signals_open(lua_State *L);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
