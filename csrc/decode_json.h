/*
 * decode_json.h - strict JSON (RFC 8259) text -> Lua value in one pass:
 * what every answer body goes through (truto.response.decode).
 */
#ifndef TRUTO_DECODE_JSON_H
#define TRUTO_DECODE_JSON_H

#include "compat.h"

/* Sets core.json_decode on the table at the top of the stack. */
void decode_json_open(lua_State *L);

#endif
