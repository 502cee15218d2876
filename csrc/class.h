/*
 * class.h - the one way the core makes a userdata type (as LuaSocket's
 * auxiliar.c): a metatable registered under the type's name, its methods
 * behind __index, its metamethods (__gc, __close, __tostring) beside them.
 * Every userdata the core hands out or keeps as an upvalue is made here.
 */
#ifndef TRUTO_CLASS_H
#define TRUTO_CLASS_H

#include <stddef.h>

#include "compat.h"

/* hidden: core.so exports luaopen_truto_core alone (see core.c) */
#pragma GCC visibility push(hidden)

/* Registers the class `name`: `methods` (may be NULL) become the __index
 * table, `metamethods` (may be NULL) are set on the metatable itself, and
 * __name is `name` on every Lua (5.1 too). Without a __tostring among the
 * metamethods, tostring gives "name: 0x...". Leaves the stack as it was. */
void class_register(lua_State *L, const char *name, const luaL_Reg *methods, const luaL_Reg *metamethods);

/* Pushes a new userdata of `size` bytes, zeroed, with the class's
 * metatable (class_register first) and returns it. */
void *class_new(lua_State *L, const char *name, size_t size);

/* The userdata at `idx` if it is of class `name`; raises (argument error)
 * otherwise. */
void *class_check(lua_State *L, int idx, const char *name);

/* The userdata at `idx` if it is of class `name`, else NULL. */
void *class_test(lua_State *L, int idx, const char *name);

#pragma GCC visibility pop

#endif
