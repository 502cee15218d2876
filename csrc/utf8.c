/*
 * utf8.c - the one UTF-8 check (see utf8.h). Must never read past the
 * bytes it is given, and never accept what RFC 3629 refuses.
 */
#include <stdint.h>
#include <string.h>

#include "utf8.h"

size_t utf8_sequence(const unsigned char *p, const unsigned char *end) {
  unsigned c = *p, cp, min;
  size_t need, i;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) { need = 1; cp = c & 0x1F; min = 0x80; }
  else if (c >= 0xE0 && c <= 0xEF) { need = 2; cp = c & 0x0F; min = 0x800; }
  else if (c >= 0xF0 && c <= 0xF4) { need = 3; cp = c & 0x07; min = 0x10000; }
  else return 0;
  if ((size_t)(end - p) <= need) return 0;
  for (i = 1; i <= need; i++) {
    if ((p[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (p[i] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return need + 1;
}

size_t utf8_valid_prefix(const char *s, size_t n, int refuse_nul) {
  const unsigned char *p = (const unsigned char *)s, *end = p + n;
  const uint64_t ones = UINT64_C(0x0101010101010101), high = UINT64_C(0x8080808080808080);
  while (p < end) {
    size_t len;
    if (end - p >= 8) {
      /* ASCII (without NUL when refused), a word at a time */
      uint64_t x;
      memcpy(&x, p, 8);
      if (((x | (refuse_nul ? (x - ones) & ~x : 0)) & high) == 0) {
        p += 8;
        continue;
      }
    }
    if (*p == 0 && refuse_nul) break;
    len = utf8_sequence(p, end);
    if (len == 0) break;
    p += len;
  }
  return (size_t)(p - (const unsigned char *)s);
}

/*
 * core.utf8_check(s [, i]) -> true | false, position
 * Whether s, from byte i (default 1), is valid UTF-8 (a NUL byte is); when
 * not, the 1-based position of the first bad byte. Raises on misuse.
 */
static int core_utf8_check(lua_State *L) {
  size_t n, at;
  const char *s = luaL_checklstring(L, 1, &n);
  lua_Integer i = luaL_optinteger(L, 2, 1);
  if (i < 1) i = 1;
  if ((size_t)i > n) {
    lua_pushboolean(L, 1);
    return 1;
  }
  at = (size_t)(i - 1) + utf8_valid_prefix(s + i - 1, n - (size_t)(i - 1), 0);
  if (at == n) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushboolean(L, 0);
  lua_pushinteger(L, (lua_Integer)(at + 1));
  return 2;
}

void utf8_open(lua_State *L) {
  lua_pushcfunction(L, core_utf8_check);
  lua_setfield(L, -2, "utf8_check");
}
