/*
 * fuzz_query.c - libFuzzer target: the query and path encoders (the build
 * of groups' create with a generated query table: remote_query trees,
 * exclusions, enums, account ids of any bytes; and of a resource that is
 * not described, whose query takes any key and whose path takes an id of
 * any value). It must give a target or nil, field, message; never crash.
 * An accepted target must hold only unreserved characters, percent
 * escapes, '=', '&', '/', '-' and '?' (nothing that could inject path,
 * query or header syntax), and an id must stay one path segment.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const KEYS[] = {
  "remote_query", "truto_exclude_fields", "group_type", "truto_response_format",
  "truto_ignore_remote_data", "integrated_account_id", "name",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_State *L = fuzz_state();
  fuzz_input in = { data, size };
  int top = lua_gettop(L), i, generic = size > 0 && (data[0] & 1);
  if (size > 0) { in.p++; in.left--; }
  lua_getglobal(L, generic ? "generic" : "endpoint");
  lua_getfield(L, -1, "build");
  lua_insert(L, -2);
  lua_newtable(L); /* body */
  lua_newtable(L);
  for (i = 0; i < 7 && in.left > 0; i++) {
    uint8_t pick = *in.p;
    in.p++;
    in.left--;
    fuzz_push_value(L, &in, 0);
    if (generic && pick & 8) {
      /* any key: a generated string, or the pick's own name */
      fuzz_push_value(L, &in, 0);
      if (lua_type(L, -1) != LUA_TSTRING) { lua_pop(L, 1); lua_pushstring(L, KEYS[pick % 7]); }
      lua_insert(L, -2);
      lua_rawset(L, -3);
    } else {
      lua_setfield(L, -2, KEYS[pick % 7]);
    }
  }
  lua_pushliteral(L, "62f44730-dd91-461e-bd6a-aedd9e0ad79d");
  if (generic) fuzz_push_value(L, &in, 0); else lua_pushnil(L); /* id */
  if (lua_pcall(L, 5, 3, 0) != 0) abort();
  if (generic && lua_isstring(L, -3)) {
    /* the id is one segment: nothing between the resource and the query
     * but one run without '/' */
    size_t n;
    const char *t = lua_tolstring(L, -3, &n), *prefix = "/unified/crm/contacts/";
    const char *q = memchr(t, '?', n);
    size_t end = q ? (size_t)(q - t) : n, plen = strlen(prefix);
    if (end <= plen || memcmp(t, prefix, plen) != 0 || memchr(t + plen, '/', end - plen)) abort();
  }
  if (lua_isstring(L, -3)) {
    size_t n, j;
    const char *t = lua_tolstring(L, -3, &n);
    for (j = 0; j < n; j++) {
      char c = t[j];
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            strchr("-._~%=&/?", c)))
        abort();
    }
  } else if (!lua_isstring(L, -2) || !lua_isstring(L, -1)) {
    abort();
  }
  lua_settop(L, top);
  lua_gc(L, LUA_GCCOLLECT, 0);
  return 0;
}
