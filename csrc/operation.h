/*
 * operation.h - API operations compiled for building requests (see
 * operation.c): core.operation(plan) -> build, core.encode_json and
 * core.FIELD_TYPES.
 */
#ifndef TRUTO_OPERATION_H
#define TRUTO_OPERATION_H

#include "compat.h"

/* hidden: core.so exports luaopen_truto_core alone (see core.c) */
#pragma GCC visibility push(hidden)

/* Sets operation, encode_json and FIELD_TYPES on the module table at the
 * top of the stack; truto.array's metatable is just below it. */
void operation_open(lua_State *L);

#pragma GCC visibility pop

#endif
