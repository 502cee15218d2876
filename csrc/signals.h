/*
 * signals.h - core.signals: a job learns that SIGINT, SIGTERM or SIGHUP
 * arrived and stops on its own terms (see signals.c).
 */
#ifndef TRUTO_SIGNALS_H
#define TRUTO_SIGNALS_H

#include "compat.h"

/* hidden: core.so exports luaopen_truto_core alone (see core.c) */
#pragma GCC visibility push(hidden)

/* Sets core.signals on the table at the top of the stack. */
void signals_open(lua_State *L);

#pragma GCC visibility pop

#endif
