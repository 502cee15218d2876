/*
 * json_markers.h - the two JSON values Lua has no word for: core.null (a
 * light userdata NULL, equal to lua-cjson's cjson.null) and core.array(t),
 * which marks a table to encode as a JSON array, empty or not.
 */
#ifndef TRUTO_JSON_MARKERS_H
#define TRUTO_JSON_MARKERS_H

#include "compat.h"

/* hidden: core.so exports luaopen_truto_core alone (see core.c) */
#pragma GCC visibility push(hidden)

/* Sets core.null, core.array and core.array_mt (the marker's metatable,
 * { __jsontype = "array" }, which the encoders compare against) on the
 * module table at the stack top. Before operation_open, which reads
 * core.array_mt. */
void json_markers_open(lua_State *L);

#pragma GCC visibility pop

#endif
