/*
 * json_scan.c - core.json_numbers_need_care(text): one pass in C over a
 * JSON text, outside its strings, telling whether any number there needs
 * more than lua-cjson gives it: an integer literal of 16 digits or more
 * (beyond 2^53 it would lose digits as a double), a fraction point not
 * followed by a digit (`1.`, which strict JSON refuses and strtod takes),
 * or an exponent of three digits or more (out of a double's range). Only
 * then does truto.response rewrite the text in Lua; every other answer
 * goes straight to cjson. Pure: reads the string, never raises.
 */
#include "json_scan.h"

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static int needs_care(const unsigned char *p, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c == '"') {
      /* skip the string, escapes included */
      for (i++; i < n && p[i] != '"'; i++)
        if (p[i] == '\\') i++;
      i++;
    } else if (is_digit(c) || (c == '-' && i + 1 < n && is_digit(p[i + 1]))) {
      size_t digits = 0;
      int fraction = 0;
      if (c == '-') i++;
      while (i < n && is_digit(p[i])) { i++; digits++; }
      if (i < n && p[i] == '.') {
        fraction = 1;
        i++;
        if (i >= n || !is_digit(p[i])) return 1;
        while (i < n && is_digit(p[i])) i++;
      }
      if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        size_t exp = 0;
        fraction = 1;
        i++;
        if (i < n && (p[i] == '+' || p[i] == '-')) i++;
        while (i < n && is_digit(p[i])) { i++; exp++; }
        if (exp >= 3) return 1;
      }
      if (!fraction && digits >= 16) return 1;
    } else {
      i++;
    }
  }
  return 0;
}

static int core_json_numbers_need_care(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  lua_pushboolean(L, needs_care((const unsigned char *)s, n));
  return 1;
}

void json_scan_open(lua_State *L) {
  lua_pushcfunction(L, core_json_numbers_need_care);
  lua_setfield(L, -2, "json_numbers_need_care");
}
