/*
 * headers.c - see headers.h. No I/O; touches only the table on top of the
 * stack, or the one line it is given.
 */
#include "headers.h"

#include <string.h>

#define MAX_NAME 128

void headers_add(lua_State *L, const char *name, size_t nlen, const char *v, size_t vlen) {
  char lower[MAX_NAME];
  const char *ve = v + vlen;
  size_t i;
  if (nlen == 0 || nlen >= sizeof lower) return;
  for (i = 0; i < nlen; i++) {
    char c = name[i];
    lower[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
  }
  /* what folded lines and padding leave around a value */
  while (v < ve && (*v == ' ' || *v == '\t')) v++;
  while (ve > v && (ve[-1] == '\r' || ve[-1] == '\n' || ve[-1] == ' ' || ve[-1] == '\t')) ve--;
  luaL_checkstack(L, 4, "too many headers");
  lua_pushlstring(L, lower, nlen);
  lua_pushvalue(L, -1);
  lua_rawget(L, -3);
  if (lua_isstring(L, -1)) {
    lua_pushliteral(L, ", ");
    lua_pushlstring(L, v, (size_t)(ve - v));
    lua_concat(L, 3);
  } else {
    lua_pop(L, 1);
    lua_pushlstring(L, v, (size_t)(ve - v));
  }
  lua_rawset(L, -3);
}

void headers_keep_empty_value(char *line) {
  char *colon = strchr(line, ':'), *p;
  if (colon == NULL || colon == line) return;
  for (p = colon + 1; *p == ' ' || *p == '\t'; p++) {}
  if (*p != '\0') return;
  colon[0] = ';';
  colon[1] = '\0';
}
