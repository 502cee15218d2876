/*
 * encode_json.h - exact JSON for Lua values (the request body).
 */
#ifndef TRUTO_ENCODE_JSON_H
#define TRUTO_ENCODE_JSON_H

#include "encoder.h"

/* hidden: core.so exports luaopen_truto_core alone (see core.c) */
#pragma GCC visibility push(hidden)

/*
 * Appends the JSON of the value at `idx` to w->out: integers exact, floats
 * shortest round-trip, object keys sorted bytewise, strings strict UTF-8
 * with control characters escaped, truto.null as null, tables marked with
 * truto.array's metatable as arrays even when empty. 0, or -1 with the
 * error (naming the path) in w.
 */
int encode_json_value(encoder *w, int idx);

/* Appends a JSON string (checked and escaped). 0 or -1. */
int encode_json_string(encoder *w, const char *s, size_t n);

#pragma GCC visibility pop

#endif
