/*
 * decode_json.h - strict JSON (RFC 8259) text -> Lua value in one pass:
 * what every answer body goes through (truto.response.decode).
 */
#ifndef TRUTO_DECODE_JSON_H
#define TRUTO_DECODE_JSON_H

#include "compat.h"

/* hidden: core.so exports luaopen_truto_core alone (see core.c) */
#pragma GCC visibility push(hidden)

/* Sets core.json_decode on the table at the top of the stack. */
void decode_json_open(lua_State *L);

#pragma GCC visibility pop

#endif
