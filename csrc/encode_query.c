/*
 * encode_query.c - query-string encoder. Everything outside the unreserved
 * set (A-Z a-z 0-9 - . _ ~) is percent-encoded, brackets included, as both
 * official SDKs do. Keys that would change the meaning of the bracket
 * syntax are refused rather than silently escaped. Never raises.
 */
#include "encode_query.h"

static const char HEX[] = "0123456789ABCDEF";

/* 1 for the unreserved set: A-Z a-z 0-9 - . _ ~ */
static const unsigned char unreserved[256] = {
  ['-'] = 1, ['.'] = 1, ['_'] = 1, ['~'] = 1,
  ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
  ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1,
  ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1,
  ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1,
  ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1,
  ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1,
  ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

/* Writes straight into the buffer: room for the rest as it is, plus two
 * bytes per escape, is reserved before each escape. */
void query_add_escaped(strbuf *b, const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s, *end = p + n;
  char *o;
  if (n == 0) return;
  if (b->cap - b->len < n && !strbuf_grow(b, n)) return;
  o = b->data + b->len;
  while (p < end) {
    unsigned char c;
    if (end - p >= 4 && (unreserved[p[0]] & unreserved[p[1]] & unreserved[p[2]] & unreserved[p[3]])) {
      memcpy(o, p, 4);
      o += 4;
      p += 4;
      continue;
    }
    c = *p++;
    if (unreserved[c]) { *o++ = (char)c; continue; }
    b->len = (size_t)(o - b->data);
    if (b->cap - b->len < (size_t)(end - p) + 3 && !strbuf_grow(b, (size_t)(end - p) + 3)) return;
    o = b->data + b->len;
    o[0] = '%'; o[1] = HEX[c >> 4]; o[2] = HEX[c & 15];
    o += 3;
  }
  b->len = (size_t)(o - b->data);
}

static void start_pair(encoder *w) {
  if (w->out.len > 0) strbuf_addc(&w->out, '&');
}

void query_add_pair(encoder *w, const char *key, size_t klen, const char *val, size_t vlen) {
  start_pair(w);
  query_add_escaped(&w->out, key, klen);
  strbuf_addc(&w->out, '=');
  query_add_escaped(&w->out, val, vlen);
}

int encode_query_scalar(encoder *w, int idx) {
  lua_State *L = w->L;
  switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
      size_t n;
      const char *s = lua_tolstring(L, idx, &n);
      if (encoder_check_string(w, s, n) < 0) return -1;
      query_add_escaped(&w->out, s, n);
      return 0;
    }
    case LUA_TNUMBER: {
      char buf[40];
      size_t n;
      if (encoder_format_text_number(w, idx, buf, &n) < 0) return -1;
      query_add_escaped(&w->out, buf, n);
      return 0;
    }
    case LUA_TBOOLEAN:
      strbuf_adds(&w->out, lua_toboolean(L, idx) ? "true" : "false");
      return 0;
    default:
      return encoder_fail(w, "is a %s, which a query string cannot carry", luaL_typename(L, idx));
  }
}

/* A nested key must not contain what the bracket syntax or the query
 * string itself would read as structure. */
int query_check_key(encoder *w, const char *s, size_t n) {
  size_t i;
  if (n == 0) return encoder_fail(w, "is an empty key");
  if (encoder_check_string(w, s, n) < 0) return -1;
  for (i = 0; i < n; i++) {
    char c = s[i];
    if (c == '[' || c == ']' || c == '&' || c == '=' || c == '#' || c == '?' ||
        (unsigned char)c < 0x20 || c == 0x7f)
      return encoder_fail(w, "key contains '%s', which query strings read as structure",
                       c == '[' ? "[" : c == ']' ? "]" : c == '&' ? "&" : c == '=' ? "=" :
                       c == '#' ? "#" : c == '?' ? "?" : "a control character");
  }
  return 0;
}

static void add_bracket(strbuf *prefix, const char *s, size_t n) {
  strbuf_add(prefix, "%5B", 3);
  query_add_escaped(prefix, s, n);
  strbuf_add(prefix, "%5D", 3);
}

static int encode_query_table(encoder *w, int idx, strbuf *prefix) {
  lua_State *L = w->L;
  int shape;
  size_t first, count, i, mark = prefix->len;
  if (encoder_enter_table(w, idx, &shape, &first, &count) < 0) return -1;
  if (shape == SHAPE_ARRAY) {
    int indexed = 0;
    for (i = 1; i <= count && !indexed; i++) {
      lua_rawgeti(L, idx, (int)i);
      indexed = lua_type(L, -1) == LUA_TTABLE;
      lua_pop(L, 1);
    }
    for (i = 1; i <= count; i++) {
      char num[24];
      int n = snprintf(num, sizeof num, "%lu", (unsigned long)(i - 1));
      if (indexed) add_bracket(prefix, num, (size_t)n);
      else strbuf_add(prefix, "%5B%5D", 6);
      lua_rawgeti(L, idx, (int)i);
      encoder_push_index(w, (long long)i);
      if (encode_query_value(w, -1, prefix) < 0) { lua_pop(L, 1); return -1; }
      encoder_pop(w);
      lua_pop(L, 1);
      prefix->len = mark;
    }
  } else {
    int pushed;
    for (i = 0; i < count; i++) {
      encoder_key k = w->keys[first + i];
      encoder_push_key(w, k.s, k.len);
      if (query_check_key(w, k.s, k.len) < 0) return -1;
      add_bracket(prefix, k.s, k.len);
      if (encode_query_value(w, encoder_value(w, k, &pushed), prefix) < 0) return -1;
      if (pushed) lua_pop(L, 1);
      encoder_pop(w);
      prefix->len = mark;
    }
  }
  encoder_leave_table(w, first);
  return 0;
}

int encode_query_value(encoder *w, int idx, strbuf *prefix) {
  lua_State *L = w->L;
  if (lua_type(L, idx) == LUA_TTABLE)
    return encode_query_table(w, idx < 0 ? lua_gettop(L) + idx + 1 : idx, prefix);
  if (lua_isnil(L, idx) || encoder_is_null(L, idx)) return 0;
  if (prefix->failed) return encoder_fail(w, "out of memory");
  start_pair(w);
  strbuf_add(&w->out, prefix->data, prefix->len);
  strbuf_addc(&w->out, '=');
  return encode_query_scalar(w, idx);
}
