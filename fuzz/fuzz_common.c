/*
 * fuzz_common.c - see fuzz_common.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

int luaopen_truto_core(lua_State *L);

lua_State *fuzz_state(void) {
  static lua_State *L = NULL;
  if (L) return L;
  L = luaL_newstate();
  luaL_openlibs(L);
  luaL_requiref(L, "truto.core", luaopen_truto_core, 0);
  lua_setglobal(L, "core");
  if (luaL_dostring(L, "package.path = 'lua/?.lua;' .. package.path\n"
                       "endpoint = core.endpoint(require 'truto.schema')\n"
                       "response = require 'truto.response'\n")) {
    fprintf(stderr, "fuzz: %s\n", lua_tostring(L, -1));
    abort();
  }
  return L;
}

static int take(fuzz_input *in) {
  if (in->left == 0) return -1;
  in->left--;
  return *in->p++;
}

static void push_string(lua_State *L, fuzz_input *in) {
  int n = take(in);
  size_t len = n < 0 ? 0 : (size_t)n;
  if (len > in->left) len = in->left;
  lua_pushlstring(L, (const char *)in->p, len);
  in->p += len;
  in->left -= len;
}

void fuzz_push_value(lua_State *L, fuzz_input *in, int depth) {
  int op = take(in), i, n;
  luaL_checkstack(L, 8, "fuzz");
  if (op < 0) { lua_pushnil(L); return; }
  if (depth > 80) op = 0;
  switch (op % 10) {
    case 0: push_string(L, in); return;
    case 1: {
      int64_t v = 0;
      size_t k = in->left < 8 ? in->left : 8;
      memcpy(&v, in->p, k);
      in->p += k; in->left -= k;
      lua_pushinteger(L, (lua_Integer)v);
      return;
    }
    case 2: {
      double d = 0;
      size_t k = in->left < 8 ? in->left : 8;
      memcpy(&d, in->p, k);
      in->p += k; in->left -= k;
      lua_pushnumber(L, d);
      return;
    }
    case 3: lua_pushboolean(L, op & 16); return;
    case 4: lua_pushlightuserdata(L, NULL); return; /* truto.null */
    case 5: case 7: /* arrays; 7: marked with truto.array */
      n = take(in);
      n = n < 0 ? 0 : n % 12;
      lua_createtable(L, n, 0);
      for (i = 1; i <= n; i++) {
        fuzz_push_value(L, in, depth + 1);
        /* a nil leaves a hole: sparse arrays must be refused, not crash */
        lua_rawseti(L, -2, i + ((op & 32) && i == n ? 1 : 0));
      }
      if (op % 10 == 7) {
        lua_getglobal(L, "core");
        lua_getfield(L, -1, "array");
        lua_pushvalue(L, -3);
        lua_call(L, 1, 0);
        lua_pop(L, 1);
      }
      return;
    case 6: case 8: /* objects; 8: with a number key mixed in */
      n = take(in);
      n = n < 0 ? 0 : n % 12;
      lua_createtable(L, 0, n);
      for (i = 0; i < n; i++) {
        push_string(L, in);
        fuzz_push_value(L, in, depth + 1);
        lua_rawset(L, -3);
      }
      if (op % 10 == 8) {
        lua_pushinteger(L, (op >> 4) - 4);
        lua_pushboolean(L, 1);
        lua_rawset(L, -3);
      }
      return;
    default: /* 9: a table that contains itself */
      lua_newtable(L);
      lua_pushvalue(L, -1);
      lua_setfield(L, -2, "self");
      return;
  }
}
