/*
 * class.c - see class.h. Registers metatables; must never keep a
 * lua_State or any other C global.
 */
#include <string.h>

#include "class.h"

/* The default __tostring: "name: 0x...". */
static int class_tostring(lua_State *L) {
  const char *name = "userdata";
  if (lua_getmetatable(L, 1)) {
    lua_getfield(L, -1, "__name");
    if (lua_type(L, -1) == LUA_TSTRING) name = lua_tostring(L, -1);
  }
  lua_pushfstring(L, "%s: %p", name, lua_touserdata(L, 1));
  return 1;
}

void class_register(lua_State *L, const char *name, const luaL_Reg *methods, const luaL_Reg *metamethods) {
  luaL_newmetatable(L, name);
  lua_pushstring(L, name);
  lua_setfield(L, -2, "__name");
  lua_pushcfunction(L, class_tostring);
  lua_setfield(L, -2, "__tostring");
  if (metamethods) luaL_setfuncs(L, metamethods, 0);
  if (methods) {
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
}

void *class_new(lua_State *L, const char *name, size_t size) {
  void *p = lua_newuserdatauv(L, size, 0);
  memset(p, 0, size);
  luaL_getmetatable(L, name);
  lua_setmetatable(L, -2);
  return p;
}

void *class_check(lua_State *L, int idx, const char *name) {
  return luaL_checkudata(L, idx, name);
}

void *class_test(lua_State *L, int idx, const char *name) {
  return luaL_testudata(L, idx, name);
}
