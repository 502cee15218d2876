/*
 * fuzz_query.c - libFuzzer target: the query encoder (endpoint:build with a
 * generated query table: remote_query trees, exclusions, enums, account
 * ids of any bytes). It must give a target or nil, field, message; never
 * crash. An accepted target must hold only unreserved characters,
 * percent escapes, '=', '&', '/', '-' and '?' (nothing that could inject
 * query or header syntax).
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
  int top = lua_gettop(L), i;
  lua_getglobal(L, "endpoint");
  lua_getfield(L, -1, "build");
  lua_insert(L, -2);
  lua_pushnil(L); /* body */
  lua_newtable(L);
  for (i = 0; i < 7 && in.left > 0; i++) {
    uint8_t pick = *in.p;
    in.p++;
    in.left--;
    fuzz_push_value(L, &in, 0);
    lua_setfield(L, -2, KEYS[pick % 7]);
  }
  lua_pushliteral(L, "62f44730-dd91-461e-bd6a-aedd9e0ad79d");
  if (lua_pcall(L, 4, 3, 0) != 0) abort();
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
