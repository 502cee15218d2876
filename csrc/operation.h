/*
 * operation.h - API operations compiled for building requests (see
 * operation.c): core.operation(plan) -> build, core.encode_json and
 * core.FIELD_TYPES.
 */
#ifndef TRUTO_OPERATION_H
#define TRUTO_OPERATION_H

#include "compat.h"

/* The core's own names stay inside core.so: a host that exports the same
 * names (Neovim exports lua-cjson's strbuf_init) must never be called in
 * their place. Only luaopen_truto_core (core.c) is exported. */
#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* Sets operation, encode_json and FIELD_TYPES on the module table at the
 * top of the stack; truto.array's metatable is just below it. */
void operation_open(lua_State *L);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
