/*
 * fuzz_json.c - libFuzzer target: the JSON encoder (endpoint:encode_json and
 * the body side of endpoint:build) on generated Lua values. Whatever the
 * value, it must return JSON or nil, field, message; never crash, leak or
 * read out of bounds. Valid JSON is checked to decode with lua-cjson.
 */
#include <stdlib.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_State *L = fuzz_state();
  fuzz_input in = { data, size };
  int top = lua_gettop(L);
  lua_getglobal(L, "endpoint");
  lua_getfield(L, -1, "encode_json");
  lua_insert(L, -2);
  fuzz_push_value(L, &in, 0);
  if (lua_pcall(L, 2, 3, 0) != 0) abort(); /* it must never raise */
  if (lua_isstring(L, -3)) {
    /* what it accepts, lua-cjson must read */
    luaL_dostring(L, "return function(s) local ok = require('cjson.safe').decode(s) ~= nil or s == 'null'; "
                     "assert(ok, 'not JSON: ' .. s) end");
    lua_pushvalue(L, -4);
    if (lua_pcall(L, 1, 0, 0) != 0) abort();
  } else if (!lua_isstring(L, -2) || !lua_isstring(L, -1)) {
    abort(); /* an error names a field and says why */
  }
  /* the same value as remote_data in a whole request */
  lua_settop(L, top);
  in.p = data;
  in.left = size;
  lua_getglobal(L, "endpoint");
  lua_getfield(L, -1, "build");
  lua_insert(L, -2);
  lua_createtable(L, 0, 1);
  fuzz_push_value(L, &in, 0);
  lua_setfield(L, -2, "remote_data");
  lua_pushnil(L);
  lua_pushliteral(L, "62f44730-dd91-461e-bd6a-aedd9e0ad79d");
  if (lua_pcall(L, 4, 3, 0) != 0) abort();
  lua_settop(L, top);
  lua_gc(L, LUA_GCCOLLECT, 0);
  return 0;
}
