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
                       "local op = require('truto.call').compile(require('truto.api').resources.groups.operations.create)\n"
                       "endpoint = { build = function(_, ...) return op.build(...) end,\n"
                       "  encode_json = function(_, v, root) return core.encode_json(v, root) end }\n"
                       "local any = require('truto.call').compile(require('truto.api').generic('crm', 'contacts').operations.update)\n"
                       "generic = { build = function(_, ...) return any.build(...) end }\n"
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

/* Every table made for the current value, in the registry: a later
 * value may be one of them again (a cycle when it is an ancestor, a shared
 * branch otherwise). */
static int tables_ref = LUA_NOREF;

static void remember_table(lua_State *L) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, tables_ref);
  lua_pushvalue(L, -2);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  lua_pop(L, 1);
}

static int64_t take_int64(fuzz_input *in) {
  int64_t v = 0;
  size_t k = in->left < 8 ? in->left : 8;
  memcpy(&v, in->p, k);
  in->p += k;
  in->left -= k;
  return v;
}

void fuzz_push_value(lua_State *L, fuzz_input *in, int depth) {
  int op, i, n;
  luaL_checkstack(L, 8, "fuzz");
  if (depth == 0) {
    /* a new value: forget the tables of the previous one */
    if (tables_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, tables_ref);
    lua_newtable(L);
    tables_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  op = take(in);
  if (op < 0) { lua_pushnil(L); return; }
  if (depth > 80) op = 0;
  if (op % 13 >= 10) {
    switch (op % 13) {
      case 10: { /* a long string: up to 16 KiB of one repeated byte, then any bytes */
        int hi = take(in), lo = take(in), fill = take(in);
        size_t len = (size_t)(hi < 0 ? 0 : hi) * 64 + (size_t)(lo < 0 ? 0 : lo);
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        for (i = 0; i < (int)len; i++) luaL_addchar(&b, (char)(fill < 0 ? 'x' : fill));
        luaL_pushresult(&b);
        push_string(L, in);
        lua_concat(L, 2);
        return;
      }
      case 11: /* what JSON cannot carry: a function, a full userdata, a coroutine */
        if ((op >> 4) % 3 == 0) lua_getglobal(L, "print");
        else if ((op >> 4) % 3 == 1) luaL_dostring(L, "return io.stdout");
        else lua_newthread(L);
        return;
      default: { /* 12: a table with an odd key: any integer, a float or a boolean */
        int kind = take(in);
        lua_newtable(L);
        remember_table(L);
        if (kind < 0 || kind % 3 == 0) lua_pushinteger(L, (lua_Integer)take_int64(in));
        else if (kind % 3 == 1) lua_pushnumber(L, (lua_Number)take_int64(in) / 3.0);
        else lua_pushboolean(L, kind & 8);
        fuzz_push_value(L, in, depth + 1);
        if (lua_isnil(L, -1) || (lua_type(L, -2) == LUA_TNUMBER && lua_tonumber(L, -2) != lua_tonumber(L, -2)))
          lua_pop(L, 2); /* nil values and NaN keys cannot be stored */
        else
          lua_rawset(L, -3);
        return;
      }
    }
  }
  switch (op % 13) {
    case 0: push_string(L, in); return;
    case 1:
      lua_pushinteger(L, (lua_Integer)take_int64(in));
      return;
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
      remember_table(L);
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
      remember_table(L);
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
    default: /* 9: a table made before (an ancestor: a cycle), or one that contains itself */
      lua_rawgeti(L, LUA_REGISTRYINDEX, tables_ref);
      n = (int)lua_rawlen(L, -1);
      i = take(in);
      if (n > 0 && i >= 0) {
        lua_rawgeti(L, -1, (i % n) + 1);
        lua_remove(L, -2);
        return;
      }
      lua_pop(L, 1);
      lua_newtable(L);
      lua_pushvalue(L, -1);
      lua_setfield(L, -2, "self");
      return;
  }
}
