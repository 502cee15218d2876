/*
 * json_markers.c - core.null and core.array (see json_markers.h). The
 * array marker is a metatable, never a field inside the table, so a marked
 * table stays an ordinary table to every other reader.
 */
#include "json_markers.h"

/* core.array([t]) -> t (a new table when none), marked to encode as a JSON
 * array. Raises when t is not a table. */
static int core_array(lua_State *L) {
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_setmetatable(L, 1);
  return 1;
}

void json_markers_open(lua_State *L) {
  lua_newtable(L);
  lua_pushliteral(L, "array");
  lua_setfield(L, -2, "__jsontype");
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "array_mt");
  lua_pushcclosure(L, core_array, 1);
  lua_setfield(L, -2, "array");
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
}
