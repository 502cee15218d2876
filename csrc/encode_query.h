/*
 * encode_query.h - the query string, in the bracket syntax Truto documents.
 */
#ifndef TRUTO_ENCODE_QUERY_H
#define TRUTO_ENCODE_QUERY_H

#include "encoder.h"

/* hidden: core.so exports luaopen_truto_core alone (see core.c) */
#pragma GCC visibility push(hidden)

/* Appends `sep` (if not first) and key=value, both percent-encoded. */
void query_add_pair(encoder *w, const char *key, size_t klen, const char *val, size_t vlen);

/* Appends raw bytes percent-encoded outside the unreserved set. */
void query_add_escaped(strbuf *b, const char *s, size_t n);

/*
 * Appends the value at `idx` under the already-escaped `prefix`:
 * scalars as prefix=value, objects as prefix%5Bkey%5D..., arrays of scalars
 * as prefix%5B%5D=v..., arrays holding tables as prefix%5B0%5D...;
 * truto.null and empty tables are left out. 0, or -1 naming the path.
 */
int encode_query_value(encoder *w, int idx, strbuf *prefix);

/* Refuses a key the bracket syntax would read as structure ([ ] & = # ?,
 * controls) or an empty one; 0 or -1 (error recorded at the current path). */
int query_check_key(encoder *w, const char *s, size_t n);

/* Appends one scalar (string, number, boolean) escaped; 0 or -1. */
int encode_query_scalar(encoder *w, int idx);

#pragma GCC visibility pop

#endif
