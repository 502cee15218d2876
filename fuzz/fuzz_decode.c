/*
 * fuzz_decode.c - libFuzzer target: core.json_decode (the answer decoder)
 * on arbitrary bytes. It must give a value, or nil and a one-line message
 * naming a byte; never raise, crash, leak or read out of bounds. A value
 * is walked whole (plain tables, only the kinds JSON makes, no NaN or
 * infinity, integers within 2^53) and encoded again with core.encode_json:
 * JSON the encoder gives back must decode again. The same bytes with every
 * option on (a depth from the first byte) must be refused when the default
 * refuses them, and refused only with such a message otherwise.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts unless why is a one-line message naming a byte. */
static void check_why(const char *why) {
  if (why == NULL || strchr(why, '\n') != NULL || strstr(why, " byte ") == NULL) {
    fprintf(stderr, "bad message: %s\n", why ? why : "(none)");
    abort();
  }
}

/* json_decode(data, every option) at the stack top: never raises, never
 * accepts what the default refused (plain_ok 0), names a byte when it
 * refuses. */
static void decode_strictly(lua_State *L, int core, const uint8_t *data, size_t size, int plain_ok) {
  lua_getfield(L, core, "json_decode");
  lua_pushlstring(L, (const char *)data, size);
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, 1 + (size > 0 ? data[0] % 100 : 0));
  lua_setfield(L, -2, "max_depth");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "duplicate_keys");
  lua_pushboolean(L, 1);
  lua_setfield(L, -2, "mark_arrays");
  lua_pushliteral(L, "integer");
  lua_setfield(L, -2, "big_integers");
  if (lua_pcall(L, 2, 2, 0) != 0) abort();
  if (lua_isnil(L, -2)) check_why(lua_tostring(L, -1));
  else if (!plain_ok) abort();
}

/* Aborts unless the value at idx is one json_decode can make. */
static void walk(lua_State *L, int idx, int depth) {
  switch (lua_type(L, idx)) {
    case LUA_TTABLE:
      if (depth > 1000 || lua_getmetatable(L, idx)) abort();
      if (!lua_checkstack(L, 4)) abort();
      lua_pushnil(L);
      while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING && !(lua_isinteger(L, -2) && lua_tointeger(L, -2) >= 1)) abort();
        walk(L, lua_gettop(L), depth + 1);
        lua_pop(L, 1);
      }
      return;
    case LUA_TNUMBER: {
      lua_Number n = lua_tonumber(L, idx);
      if (n != n || isinf(n)) abort();
      if (lua_isinteger(L, idx) && fabs(n) > 9007199254740992.0) abort();
      if (!lua_isinteger(L, idx) && n == floor(n) && fabs(n) <= 9007199254740992.0) abort();
      return;
    }
    case LUA_TSTRING:
    case LUA_TBOOLEAN:
      return;
    case LUA_TLIGHTUSERDATA:
      if (lua_touserdata(L, idx) != NULL) abort(); /* only truto.null */
      return;
    default:
      abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_State *L = fuzz_state();
  int top = lua_gettop(L), plain_ok;
  lua_getglobal(L, "core");
  lua_getfield(L, -1, "json_decode");
  lua_pushlstring(L, (const char *)data, size);
  if (lua_pcall(L, 1, 2, 0) != 0) abort(); /* it must never raise */
  plain_ok = !lua_isnil(L, -2);
  if (!plain_ok) {
    check_why(lua_tostring(L, -1));
  } else {
    int value = lua_gettop(L) - 1;
    walk(L, value, 0);
    /* the same value through the request encoder, and back */
    lua_getfield(L, top + 1, "encode_json");
    lua_pushvalue(L, value);
    if (lua_pcall(L, 1, 3, 0) != 0) abort();
    if (lua_type(L, -3) == LUA_TSTRING) {
      lua_getfield(L, top + 1, "json_decode");
      lua_pushvalue(L, -4);
      if (lua_pcall(L, 1, 2, 0) != 0) abort();
      if (lua_isnil(L, -2)) {
        fprintf(stderr, "encoded JSON refused: %s\n", lua_tostring(L, -1));
        abort();
      }
    }
  }
  decode_strictly(L, top + 1, data, size, plain_ok);
  lua_settop(L, top);
  lua_gc(L, LUA_GCCOLLECT, 0);
  return 0;
}
