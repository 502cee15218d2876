/*
 * compat.h - the Lua 5.1 / LuaJIT / 5.2 / 5.3 / 5.4 differences the C core
 * relies on, and nothing else. Every other file writes against the 5.4 API
 * and includes this after lua.h/lauxlib.h.
 */
#ifndef TRUTO_COMPAT_H
#define TRUTO_COMPAT_H

#include "lua.h"
#include "lauxlib.h"

/* hidden: core.so exports luaopen_truto_core alone (see core.c) */
#pragma GCC visibility push(hidden)

#if LUA_VERSION_NUM < 502
/* Lua 5.1 and LuaJIT */
#define lua_rawlen(L, i) lua_objlen((L), (i))
#ifndef luaL_newlib
#define luaL_newlib(L, l) (lua_newtable(L), luaL_register((L), NULL, (l)))
#endif
#ifndef LUAJIT_VERSION_NUM /* LuaJIT 2.1 has these */
void luaL_setfuncs(lua_State *L, const luaL_Reg *l, int nup);
void *luaL_testudata(lua_State *L, int ud, const char *tname);
#endif
#endif

#if LUA_VERSION_NUM < 503
#define TRUTO_HAS_INTEGERS 0
#define lua_isinteger(L, i) 0
#else
#define TRUTO_HAS_INTEGERS 1
#endif

#if LUA_VERSION_NUM < 504
#define lua_newuserdatauv(L, sz, nuv) lua_newuserdata((L), (sz))
#endif

#pragma GCC visibility pop

#endif
