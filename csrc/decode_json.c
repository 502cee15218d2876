/*
 * decode_json.c - core.json_decode: one strict JSON text (RFC 8259) to one
 * Lua value in a single pass, with the number rules of the call path:
 * integral numbers within +-2^53 as Lua integers (5.3+), integer literals
 * beyond 2^53 as strings of their exact digits, null as truto.null.
 *
 * Must never: accept what RFC 8259 refuses (NaN, Infinity, hex, leading
 * zeros, `1.`, `.5`, `+1`, bytes after the value), round an integer
 * literal, raise for bad input (only memory exhaustion raises), recurse
 * (open containers live on the Lua stack and in a fixed array here, so a
 * deep text cannot overflow the C stack), or read a number through the C
 * locale (no decimal point ever reaches strtod).
 *
 * The scanners rely on the '\0' that Lua keeps after every string: reading
 * text[len] is allowed and stops every loop, and a '\0' before the end is
 * told apart by its position (inside strings it is a byte like any other).
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__) && defined(__GNUC__)
#include <emmintrin.h>
#define SCAN_16 1
#endif

#include "class.h"
#include "decode_json.h"

#define MAX_DEPTH 1000           /* lua-cjson's limit, kept */
#define EXACT 9007199254740992.0 /* 2^53: every integer up to it is exact in a double */
#define EXACT_INT UINT64_C(9007199254740992)

/* Clinger's fast path (a product or quotient of two exact doubles is
 * correctly rounded) needs arithmetic done in double precision, not x87's
 * extended one. */
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
#define FAST_PATH 1
#else
#define FAST_PATH 0
#endif

/* Object keys met lately, so that a key seen before is pushed without
 * scanning it or Lua hashing its bytes again (keys repeat: every item of
 * a list has the same ones). Slot i holds the bytes of the string at
 * index i + 1 of the cache table (the closure's second upvalue), which
 * keeps it alive while the slot points into it. Slots go in pairs chosen
 * by a key's first bytes; a new key takes an empty one or pushes out the
 * older. Per Lua state, in the closure's first upvalue: no C globals. */
#define KEY_CACHE_CLASS "truto.json_key_cache"
#define KEY_SLOTS 128
#define KEY_MAX 40 /* longer keys are rare and not cached */
#define HINT_MAX 64 /* the most members a table is made for ahead */
#define HINT_SLOTS 256
#define HINT_SLOT(key_slot, depth) (((unsigned)(key_slot) * 8u + (unsigned)(depth)) % HINT_SLOTS)
typedef struct key_cache {
  const char *bytes[KEY_SLOTS]; /* NULL: empty slot */
  size_t len[KEY_SLOTS];
  /* how many members the last object with the same first key (its slot)
   * at the same depth had: the size a table for the next such object is
   * made with (a list is of objects of one shape); a wrong guess costs a
   * regrow or a few empty slots, never a wrong value */
  unsigned char members[HINT_SLOTS];
} key_cache;

/* What a caller may ask of the decoder (core.json_decode's options). */
typedef struct decode_options {
  int max_depth;        /* 1..MAX_DEPTH */
  int unique_keys;      /* refuse an object that repeats a key */
  int mark_arrays;      /* give every array truto.array's metatable */
  int big_as_integer;   /* integer literals beyond 2^53 as Lua integers */
} decode_options;

typedef struct decoder {
  lua_State *L;
  const char *text;
  const char *end; /* text + length; *end is the '\0' Lua keeps there */
  key_cache *keys;
  int keys_index;  /* stack index of the cache table */
  int array_mt;    /* stack index of truto.array's metatable (mark_arrays) */
  int key_slot;    /* the cache slot of the key push_key pushed last, or -1 */
  decode_options opt;
  char why[160];
} decoder;

/* Bytes that end a run of plain string bytes. */
static const unsigned char STRING_STOP[256] = { [0] = 1, ['"'] = 1, ['\\'] = 1 };

/* The four bytes RFC 8259 allows between tokens. */
static const unsigned char SPACE[256] = { [' '] = 1, ['\t'] = 1, ['\n'] = 1, ['\r'] = 1 };

static const double POW10[] = { 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
  1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22 };

static int is_digit(char c) {
  return c >= '0' && c <= '9';
}

/* A byte that may not follow a number or a literal: one that would make a
 * longer token of it (`01`, `1.`, `1e`, `truex`, `0x1F`, `1-2`). */
static int is_word(char c) {
  unsigned char lower = (unsigned char)(c | 0x20);
  return is_digit(c) || (lower >= 'a' && lower <= 'z') || c == '.' || c == '+' || c == '-';
}

static size_t position(const decoder *d, const char *at) {
  return (size_t)(at - d->text) + 1;
}

/* Sets why to "<what> at byte N"; returns NULL for `return fail(...)`. */
static const char *fail(decoder *d, const char *at, const char *what) {
  snprintf(d->why, sizeof d->why, "%s at byte %zu", what, position(d, at));
  return NULL;
}

/* "<what> <token> at byte N": the token is the run of word bytes at
 * `start` (the whole `-Infinity`, `0x1F`, `1.e5`), cut at 40 bytes. */
static const char *fail_token(decoder *d, const char *start, const char *what) {
  const char *q = start;
  while (q < d->end && q - start < 40 && is_word(*q)) q++;
  snprintf(d->why, sizeof d->why, "%s %.*s%s at byte %zu", what, (int)(q - start), start,
           q < d->end && is_word(*q) ? "..." : "", position(d, start));
  return NULL;
}

/* "unexpected <byte> at byte N (expected <expected>)". */
static const char *fail_unexpected(decoder *d, const char *at, const char *expected) {
  unsigned char c = (unsigned char)*at;
  if (at == d->end)
    snprintf(d->why, sizeof d->why, "unexpected end of text at byte %zu (expected %s)",
             position(d, at), expected);
  else if (c > 0x20 && c < 0x7f)
    snprintf(d->why, sizeof d->why, "unexpected '%c' at byte %zu (expected %s)", c,
             position(d, at), expected);
  else
    snprintf(d->why, sizeof d->why, "unexpected byte 0x%02X at byte %zu (expected %s)", c,
             position(d, at), expected);
  return NULL;
}

static const char *skip_space(const char *p) {
  while (SPACE[(unsigned char)*p]) p++;
  return p;
}

/* The first '"' or '\\' at or after p, or a '\0' before them (there is
 * one: the '\0' at the end). Sixteen (SSE2) or eight bytes at a time while
 * that many remain before `end`, so never a read past the string; the
 * closing '\0' is never among them, so only '"' and '\\' are looked for
 * there, and a '\0' inside the text may be passed over (it is a byte like
 * any other). */
static const char *string_stop(const char *p, const char *end) {
  const uint64_t ones = UINT64_C(0x0101010101010101), highs = UINT64_C(0x8080808080808080);
  const uint64_t quotes = ones * '"', backslashes = ones * '\\';
#ifdef SCAN_16
  const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
  while (end - p >= 16) {
    __m128i w = _mm_loadu_si128((const __m128i *)(const void *)p);
    int hits = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(w, quote), _mm_cmpeq_epi8(w, backslash)));
    if (hits) return p + __builtin_ctz((unsigned)hits);
    p += 16;
  }
#endif
  while (end - p >= 8) {
    uint64_t w, q, b, hits;
    memcpy(&w, p, 8);
    q = w ^ quotes;
    b = w ^ backslashes;
    /* the lowest byte that is zero in q or b has its high bit set here
     * (higher bytes may be false alarms, the lowest never is) */
    hits = (((q - ones) & ~q) | ((b - ones) & ~b)) & highs;
    if (hits) {
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
      return p + (__builtin_ctzll(hits) >> 3);
#else
      break; /* the bytes below find it */
#endif
    }
    p += 8;
  }
  while (!STRING_STOP[(unsigned char)*p]) p++;
  return p;
}

/* The code unit of the 4 hex digits at p, or -1. Stops at the first byte
 * that is not one (the closing '\0' included). */
static long hex4(const char *p) {
  long v = 0;
  int i;
  for (i = 0; i < 4; i++) {
    char c = p[i];
    int digit;
    if (c >= '0' && c <= '9') digit = c - '0';
    else if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') digit = c - 'A' + 10;
    else return -1;
    v = v * 16 + digit;
  }
  return v;
}

/* Adds the UTF-8 of the \u escape at p (its backslash), a surrogate pair
 * as one 4-byte character; returns what follows it, or NULL. */
static const char *add_unicode(decoder *d, luaL_Buffer *b, const char *p) {
  long cp = hex4(p + 2), low;
  if (cp < 0) return fail(d, p, "invalid \\u escape");
  if (cp >= 0xDC00 && cp <= 0xDFFF) {
    snprintf(d->why, sizeof d->why, "lone surrogate \\u%.4s at byte %zu", p + 2, position(d, p));
    return NULL;
  }
  if (cp >= 0xD800 && cp <= 0xDBFF) {
    low = p[6] == '\\' && p[7] == 'u' ? hex4(p + 8) : -1;
    if (low < 0xDC00 || low > 0xDFFF) {
      snprintf(d->why, sizeof d->why, "lone surrogate \\u%.4s at byte %zu", p + 2, position(d, p));
      return NULL;
    }
    cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    p += 6;
  }
  if (cp < 0x80) {
    luaL_addchar(b, (char)cp);
  } else if (cp < 0x800) {
    luaL_addchar(b, (char)(0xC0 | (cp >> 6)));
    luaL_addchar(b, (char)(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    luaL_addchar(b, (char)(0xE0 | (cp >> 12)));
    luaL_addchar(b, (char)(0x80 | ((cp >> 6) & 0x3F)));
    luaL_addchar(b, (char)(0x80 | (cp & 0x3F)));
  } else {
    luaL_addchar(b, (char)(0xF0 | (cp >> 18)));
    luaL_addchar(b, (char)(0x80 | ((cp >> 12) & 0x3F)));
    luaL_addchar(b, (char)(0x80 | ((cp >> 6) & 0x3F)));
    luaL_addchar(b, (char)(0x80 | (cp & 0x3F)));
  }
  return p + 6;
}

/* The rest of a string with escapes: `start` is its first byte, p its
 * first backslash. Pushes it; returns what follows, or NULL. */
static const char *push_escaped(decoder *d, const char *start, const char *p) {
  luaL_Buffer b;
  const char *run = start;
  luaL_buffinit(d->L, &b);
  for (;;) {
    p = string_stop(p, d->end);
    if (*p == '\0') {
      if (p == d->end) return fail(d, start - 1, "unterminated string");
      p++;
      continue;
    }
    luaL_addlstring(&b, run, (size_t)(p - run));
    if (*p == '"') {
      luaL_pushresult(&b);
      return p + 1;
    }
    switch (p[1]) { /* p[1] is at most the closing '\0' */
      case '"': case '\\': case '/': luaL_addchar(&b, p[1]); p += 2; break;
      case 'b': luaL_addchar(&b, '\b'); p += 2; break;
      case 'f': luaL_addchar(&b, '\f'); p += 2; break;
      case 'n': luaL_addchar(&b, '\n'); p += 2; break;
      case 'r': luaL_addchar(&b, '\r'); p += 2; break;
      case 't': luaL_addchar(&b, '\t'); p += 2; break;
      case 'u':
        p = add_unicode(d, &b, p);
        if (p == NULL) return NULL;
        break;
      default:
        if (p + 1 == d->end) return fail(d, start - 1, "unterminated string");
        if (p[1] > 0x20 && p[1] < 0x7f) {
          snprintf(d->why, sizeof d->why, "invalid escape \\%c at byte %zu", p[1], position(d, p));
          return NULL;
        }
        return fail(d, p, "invalid escape");
    }
    run = p;
  }
}

/* Pushes the string whose opening quote is at p; returns what follows it,
 * or NULL. Without escapes the bytes are pushed straight from the text. */
static const char *push_string(decoder *d, const char *p) {
  const char *start = ++p;
  for (;;) {
    p = string_stop(p, d->end);
    if (*p == '"') {
      lua_pushlstring(d->L, start, (size_t)(p - start));
      return p + 1;
    }
    if (*p == '\\') return push_escaped(d, start, p);
    if (p == d->end) return fail(d, start - 1, "unterminated string");
    p++; /* a '\0' inside the text */
  }
}

/* memcmp(a, b, n) == 0 without a call for the usual key lengths. */
static int same_bytes(const char *a, const char *b, size_t n) {
  uint64_t x, y, x2, y2;
  if (n < 8) {
    while (n > 0 && *a == *b) a++, b++, n--;
    return n == 0;
  }
  if (n > 16) return memcmp(a, b, n) == 0;
  /* two words that overlap when n < 16 */
  memcpy(&x, a, 8);
  memcpy(&y, b, 8);
  memcpy(&x2, a + n - 8, 8);
  memcpy(&y2, b + n - 8, 8);
  return ((x ^ y) | (x2 ^ y2)) == 0;
}

/* push_string for an object key, through the key cache. A key's pair of
 * slots comes from its first four bytes (whatever follows a shorter key
 * included), so a key met before is found without scanning it: its
 * cached bytes, then a closing quote (a cached key holds no '"' or '\\'). */
static const char *push_key(decoder *d, const char *p) {
  const char *start = p + 1, *stop;
  size_t n, room = (size_t)(d->end - start);
  unsigned pair = 0, slot, way;
  key_cache *keys = d->keys;
  lua_State *L = d->L;
  d->key_slot = -1;
  if (room < 4) return push_string(d, p);
  {
    uint32_t prefix;
    memcpy(&prefix, start, 4);
    pair = ((prefix * UINT32_C(2654435761)) >> 26) * 2; /* Fibonacci hashing: 64 pairs */
  }
  for (way = 0; way < 2; way++) {
    slot = pair + way;
    n = keys->len[slot];
    if (keys->bytes[slot] != NULL && room > n && start[n] == '"' && same_bytes(keys->bytes[slot], start, n)) {
      lua_rawgeti(L, d->keys_index, (int)slot + 1);
      d->key_slot = (int)slot;
      return start + n + 1;
    }
  }
  stop = string_stop(start, d->end);
  n = (size_t)(stop - start);
  if (*stop != '"' || n > KEY_MAX) return push_string(d, p);
  /* a new key: into an empty way, else into way 0, its key moved to way 1 */
  slot = keys->bytes[pair] == NULL ? pair : keys->bytes[pair + 1] == NULL ? pair + 1 : pair;
  if (slot == pair && keys->bytes[pair] != NULL) {
    lua_rawgeti(L, d->keys_index, (int)pair + 1);
    lua_rawseti(L, d->keys_index, (int)pair + 2);
    keys->bytes[pair + 1] = keys->bytes[pair];
    keys->len[pair + 1] = keys->len[pair];
  }
  lua_pushlstring(L, start, n);
  lua_pushvalue(L, -1);
  lua_rawseti(L, d->keys_index, (int)slot + 1); /* keeps it alive: then the pointer */
  keys->bytes[slot] = lua_tostring(L, -1);
  keys->len[slot] = n;
  d->key_slot = (int)slot;
  return stop + 1;
}

/* The magnitude of the number whose digits start at `digits` and end at
 * `end` (`point`, `exp`: its '.' and 'e', or NULL), correctly rounded:
 * Clinger's fast path when the significant digits fit 2^53 and the power
 * of ten is exact, else strtod on the same value rewritten as
 * "<digits>e<exponent>" (no decimal point, so no locale can misread it).
 * Returns 0 only when no buffer could be had for a very long token. */
static int number_value(const char *digits, const char *point, const char *exp,
                        const char *end, double *out) {
  const char *mantissa_end = exp ? exp : end, *q, *first = NULL;
  long long e10 = 0;
  uint64_t m = 0;
  int significant = 0;
  char local[128], *buf;
  size_t len;
  if (exp) {
    int negative = 0;
    q = exp + 1;
    if (*q == '+' || *q == '-') negative = *q++ == '-';
    /* clamped far beyond any double's range plus any text's length */
    for (; q < end; q++)
      if (e10 < 100000000000000000LL) e10 = e10 * 10 + (*q - '0');
    if (negative) e10 = -e10;
  }
  if (point) e10 -= (long long)(mantissa_end - point - 1);
  for (q = digits; q < mantissa_end; q++) {
    if (q == point || (first == NULL && *q == '0')) continue;
    if (first == NULL) first = q;
    if (++significant <= 19) m = m * 10 + (uint64_t)(*q - '0');
  }
  if (first == NULL) {
    *out = 0.0;
    return 1;
  }
  if (FAST_PATH && significant <= 19 && m <= EXACT_INT && e10 >= -22 && e10 <= 22) {
    *out = e10 >= 0 ? (double)m * POW10[e10] : (double)m / POW10[-e10];
    return 1;
  }
  len = (size_t)(mantissa_end - first) + 24;
  buf = len <= sizeof local ? local : malloc(len);
  if (buf == NULL) return 0;
  len = 0;
  for (q = first; q < mantissa_end; q++)
    if (q != point) buf[len++] = *q;
  snprintf(buf + len, 24, "e%lld", e10);
  *out = strtod(buf, NULL);
  if (buf != local) free(buf);
  return 1;
}

/* big_integers = "integer": the integer literal from `start` (its digits
 * from `digits`, up to `end`), beyond 2^53, as a Lua integer when this Lua
 * holds it exactly (64 bits on 5.3+); else NULL with why set: never rounded,
 * never a string. */
static const char *push_big_integer(decoder *d, const char *start, const char *digits, const char *end) {
  int n = (int)(end - start);
#if TRUTO_HAS_INTEGERS
  uint64_t v = 0, limit = *start == '-' ? UINT64_C(9223372036854775808) : UINT64_C(9223372036854775807);
  const char *q;
  for (q = digits; q < end; q++) {
    unsigned digit = (unsigned)(*q - '0');
    if (v > (limit - digit) / 10) break;
    v = v * 10 + digit;
  }
  if (q == end) {
    /* -2^63 is the one value whose magnitude no lua_Integer holds */
    lua_pushinteger(d->L, *start == '-' ? (lua_Integer)(UINT64_C(0) - v) : (lua_Integer)v);
    return end;
  }
  snprintf(d->why, sizeof d->why, "integer %.*s%s does not fit in 64 bits at byte %zu (it would be "
           "rounded: write it as a string)", n > 40 ? 40 : n, start, n > 40 ? "..." : "", position(d, start));
#else
  (void)digits;
  snprintf(d->why, sizeof d->why, "integer %.*s%s is beyond 2^53, the largest integer " LUA_VERSION
           " keeps exact, at byte %zu (it would be rounded: write it as a string)", n > 40 ? 40 : n, start,
           n > 40 ? "..." : "", position(d, start));
#endif
  return NULL;
}

/* Pushes the number token at p ('-' or a digit); returns what follows it,
 * or NULL. */
static const char *push_number(decoder *d, const char *p) {
  const char *start = p, *digits, *point = NULL, *exp = NULL;
  int negative = *p == '-';
  double x;
  p += negative;
  digits = p;
  if (*p == '0') p++;
  else if (is_digit(*p)) do p++; while (is_digit(*p));
  else return fail_token(d, start, "invalid number");
  if (*p == '.') {
    point = p++;
    if (!is_digit(*p)) return fail_token(d, start, "invalid number");
    do p++; while (is_digit(*p));
  }
  if (*p == 'e' || *p == 'E') {
    exp = p++;
    if (*p == '+' || *p == '-') p++;
    if (!is_digit(*p)) return fail_token(d, start, "invalid number");
    do p++; while (is_digit(*p));
  }
  if (is_word(*p)) return fail_token(d, start, "invalid number");
  if (point == NULL && exp == NULL) {
    /* an integer literal: exact as an integer up to 2^53, its own digits beyond */
    if (p - digits <= 16) {
      uint64_t v = 0;
      const char *q;
      for (q = digits; q < p; q++) v = v * 10 + (uint64_t)(*q - '0');
      if (v <= EXACT_INT) {
#if TRUTO_HAS_INTEGERS
        lua_pushinteger(d->L, negative ? -(lua_Integer)v : (lua_Integer)v);
#else
        lua_pushnumber(d->L, negative ? -(lua_Number)v : (lua_Number)v);
#endif
        return p;
      }
    }
    if (d->opt.big_as_integer) return push_big_integer(d, start, digits, p);
    lua_pushlstring(d->L, start, (size_t)(p - start));
    return p;
  }
  if (!number_value(digits, point, exp, p, &x)) return fail(d, start, "out of memory for a number");
  if (isinf(x)) return fail_token(d, start, "number out of range");
  if (negative) x = -x;
#if TRUTO_HAS_INTEGERS
  /* integral within 2^53 (1e2, 3.0, -0.0, an underflow): an integer */
  if (fabs(x) <= EXACT && (lua_Number)(lua_Integer)x == x) {
    lua_pushinteger(d->L, (lua_Integer)x);
    return p;
  }
#endif
  lua_pushnumber(d->L, (lua_Number)x);
  return p;
}

/* Checks the literal `word` (n bytes) at p and returns what follows it. */
static const char *literal(decoder *d, const char *p, const char *word, size_t n) {
  if ((size_t)(d->end - p) >= n && memcmp(p, word, n) == 0 && !is_word(p[n])) return p + n;
  return fail_token(d, p, "invalid literal");
}

/* An open array or object; its table's slot on the Lua stack is kept from
 * the start (nil until the table is made). An object's table is made at
 * its first key, sized by the key cache's hint, and each member goes in
 * as soon as it is read. An array's items wait on the stack above its
 * slot and go in a chunk at a time, last first, into a table made at the
 * size of the first chunk. */
typedef struct level {
  int table;          /* stack index of its table */
  unsigned char made; /* the table is made (else that slot holds nil) */
  unsigned char object;
  short hint_slot;    /* an object's slot in key_cache.members, or -1 */
  const char *key_at; /* an object's: where the member being read starts */
  lua_Integer count;  /* an object's members so far, or an array's items
                       * already in its table (an array of 2^31 items
                       * cannot be built on 5.1, whose lua_rawseti takes
                       * an int: memory ends first) */
} level;

/* Items an array keeps waiting before they go into its table. */
#define CHUNK 64

/* Stack slots a level may use above the point where it opens: its table,
 * its waiting items or the key of the member being read, and what reading
 * one value takes (a luaL_Buffer on Lua 5.1 uses up to LUA_MINSTACK / 2). */
#define LEVEL_SLOTS (CHUNK + LUA_MINSTACK + 4)

/* Moves the waiting items of the array `lv` into its table, making the
 * table first (sized for them plus `more`) if it is not made yet. */
static void flush_array(lua_State *L, level *lv, int more) {
  int n = lua_gettop(L) - lv->table, i;
  if (!lv->made) {
    lua_createtable(L, n + more, 0);
    lua_replace(L, lv->table);
    lv->made = 1;
  }
  /* each lua_rawseti takes the top item: the last first */
  for (i = n; i > 0; i--) lua_rawseti(L, lv->table, lv->count + i);
  lv->count += n;
}

/* With the key and value of a member on top of the stack: 1 when the
 * object `lv` has no member of that name yet, else 0 with why set. */
static int unique_key(decoder *d, const level *lv) {
  lua_State *L = d->L;
  size_t n, i, shown = 0;
  const char *key;
  char safe[48];
  int repeated;
  lua_pushvalue(L, -2);
  lua_rawget(L, lv->table);
  repeated = !lua_isnil(L, -1);
  lua_pop(L, 1);
  if (!repeated) return 1;
  key = lua_tolstring(L, -2, &n);
  for (i = 0; i < n && shown < 40; i++) {
    unsigned char c = (unsigned char)key[i];
    safe[shown++] = c >= 0x20 && c < 0x7f && c != '"' && c != '\\' ? (char)c : '?';
  }
  safe[shown] = '\0';
  snprintf(d->why, sizeof d->why, "duplicate key \"%s%s\" at byte %zu", safe, i < n ? "..." : "",
           position(d, lv->key_at));
  return 0;
}

/*
 * Decodes the whole text, leaving the value on the stack: 1, or 0 with
 * d->why set (the stack then holds partial work the caller drops).
 * A state machine rather than recursion: `value` reads one value and
 * `stored` decides what follows it. Only the innermost array keeps items
 * waiting: opening a container puts its parent array's waiting items
 * into the parent's table first, so the stack stays within LEVEL_SLOTS +
 * 2 slots per level (Lua 5.1 allows 8000 in all).
 */
static int decode_text(decoder *d) {
  lua_State *L = d->L;
  const char *p = d->text;
  level levels[MAX_DEPTH + 1], *lv = levels; /* levels[0]: the text itself */
  int depth = 0;

value:
  p = skip_space(p);
  switch (*p) {
    case '{':
    case '[':
      if (depth == d->opt.max_depth) {
        snprintf(d->why, sizeof d->why, "nested deeper than %d levels at byte %zu", d->opt.max_depth,
                 position(d, p));
        return 0;
      }
      if (depth > 0 && !lv->object) flush_array(L, lv, 1);
      if (!lua_checkstack(L, LEVEL_SLOTS)) {
        fail(d, p, "nested too deep for the Lua stack");
        return 0;
      }
      lv = &levels[++depth];
      lua_pushnil(L);
      lv->table = lua_gettop(L);
      lv->made = 0;
      lv->object = *p == '{';
      lv->hint_slot = -1;
      lv->count = 0;
      p = skip_space(p + 1);
      if (lv->object) {
        if (*p != '}') goto key;
      } else if (*p != ']') {
        goto value;
      }
      goto close;
    case '"':
      p = push_string(d, p);
      break;
    case '-': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
      p = push_number(d, p);
      break;
    case 't':
      p = literal(d, p, "true", 4);
      if (p) lua_pushboolean(L, 1);
      break;
    case 'f':
      p = literal(d, p, "false", 5);
      if (p) lua_pushboolean(L, 0);
      break;
    case 'n':
      p = literal(d, p, "null", 4);
      if (p) lua_pushlightuserdata(L, NULL); /* truto.null, cjson.null */
      break;
    default:
      if (*p == '.' || *p == '+') fail_token(d, p, "invalid number");
      else if (is_word(*p)) fail_token(d, p, "invalid literal");
      else fail_unexpected(d, p, "a value");
      return 0;
  }
  if (p == NULL) return 0;

stored: /* a value was pushed: the text's, an array item or a member's */
  if (depth == 0) {
    p = skip_space(p);
    if (p != d->end) {
      fail_unexpected(d, p, "the end of the text");
      return 0;
    }
    return 1;
  }
  if (lv->object) {
    if (d->opt.unique_keys && !unique_key(d, lv)) return 0;
    lua_rawset(L, lv->table); /* in text order: of two equal keys the last wins */
    lv->count++;
  } else if (lua_gettop(L) - lv->table >= CHUNK) {
    flush_array(L, lv, CHUNK);
  }
  p = skip_space(p);
  if (*p == ',') {
    p = skip_space(p + 1);
    if (lv->object) goto key;
    goto value;
  }
  if (*p == (lv->object ? '}' : ']')) goto close;
  fail_unexpected(d, p, lv->object ? "',' or '}'" : "',' or ']'");
  return 0;

close: /* p: the closing bracket; the table becomes the value on top */
  if (!lv->object) {
    flush_array(L, lv, 0);
    if (d->opt.mark_arrays) {
      lua_pushvalue(L, d->array_mt);
      lua_setmetatable(L, lv->table);
    }
  } else if (!lv->made) {
    lua_createtable(L, 0, 0);
    lua_replace(L, lv->table);
  } else if (lv->hint_slot >= 0) {
    d->keys->members[lv->hint_slot] = (unsigned char)(lv->count < HINT_MAX ? lv->count : HINT_MAX);
  }
  p++;
  lv = &levels[--depth];
  goto stored;

key: /* p: the first byte of a member, after any space */
  if (*p != '"') {
    fail_unexpected(d, p, lv->made ? "a string key" : "a string key or '}'");
    return 0;
  }
  lv->key_at = p;
  p = push_key(d, p);
  if (p == NULL) return 0;
  if (!lv->made) {
    /* the table goes below the key, sized as the last object like it */
    lv->hint_slot = d->key_slot >= 0 ? (short)HINT_SLOT(d->key_slot, depth) : -1;
    lua_createtable(L, 0, lv->hint_slot >= 0 ? d->keys->members[lv->hint_slot] : 0);
    lua_replace(L, lv->table);
    lv->made = 1;
  }
  p = skip_space(p);
  if (*p != ':') {
    fail_unexpected(d, p, "':'");
    return 0;
  }
  p++;
  goto value;
}

/* Reads core.json_decode's options (the table at `idx`, or none) into
 * opt; raises on misuse, naming the option. */
static void read_options(lua_State *L, int idx, decode_options *opt) {
  opt->max_depth = MAX_DEPTH;
  opt->unique_keys = opt->mark_arrays = opt->big_as_integer = 0;
  if (lua_isnoneornil(L, idx)) return;
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    const char *name = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
    if (strcmp(name, "max_depth") == 0) {
      lua_Number n = lua_tonumber(L, -1);
      if (lua_type(L, -1) != LUA_TNUMBER || n != (lua_Number)(int)n || n < 1 || n > MAX_DEPTH)
        luaL_error(L, "json_decode: options.max_depth must be a whole number from 1 to %d", MAX_DEPTH);
      opt->max_depth = (int)n;
    } else if (strcmp(name, "duplicate_keys") == 0 || strcmp(name, "mark_arrays") == 0) {
      if (lua_type(L, -1) != LUA_TBOOLEAN) luaL_error(L, "json_decode: options.%s must be a boolean", name);
      if (name[0] == 'd') opt->unique_keys = !lua_toboolean(L, -1);
      else opt->mark_arrays = lua_toboolean(L, -1);
    } else if (strcmp(name, "big_integers") == 0) {
      const char *v = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
      if (strcmp(v, "string") != 0 && strcmp(v, "integer") != 0)
        luaL_error(L, "json_decode: options.big_integers must be \"string\" or \"integer\"");
      opt->big_as_integer = v[0] == 'i';
    } else {
      luaL_error(L, "json_decode: options.%s is not an option (max_depth, duplicate_keys, "
                 "mark_arrays, big_integers)", lua_type(L, -2) == LUA_TSTRING ? name : "?");
    }
    lua_pop(L, 1);
  }
}

/*
 * core.json_decode(text [, options]) -> value | nil, why
 * text: one JSON text. Objects and arrays become plain tables (duplicate
 * keys: the last wins), null truto.null, numbers as the file header says;
 * every byte of a string that is not part of an escape is kept as it is.
 * options (all optional; a misspelt or mistyped one raises):
 *   max_depth = N         refuse nesting deeper than N (1..1000, default 1000)
 *   duplicate_keys = false  refuse an object that repeats a key
 *   mark_arrays = true    give every array truto.array's metatable, so an
 *                         empty one encodes back as [] (and is told from {})
 *   big_integers = "integer"  integer literals beyond 2^53 as Lua integers
 *                         where this Lua holds them exactly (64 bits on 5.3+),
 *                         refused beyond, instead of strings of their digits
 *                         ("string", the default)
 * Bytes after the value are always refused.
 * why: what is wrong and at which byte (1-based), e.g. "invalid number 01
 * at byte 7"; "not a string" when text is not one. Raises only on misuse
 * of options and on memory exhaustion.
 */
static int core_json_decode(lua_State *L) {
  decoder d;
  size_t len;
  read_options(L, 2, &d.opt);
  if (lua_type(L, 1) != LUA_TSTRING) {
    lua_pushnil(L);
    lua_pushliteral(L, "not a string");
    return 2;
  }
  lua_settop(L, 1);
  lua_pushvalue(L, lua_upvalueindex(2));
  if (d.opt.mark_arrays) lua_getfield(L, lua_upvalueindex(3), "array_mt");
  else lua_pushnil(L);
  d.L = L;
  d.text = lua_tolstring(L, 1, &len);
  d.end = d.text + len;
  d.keys = (key_cache *)lua_touserdata(L, lua_upvalueindex(1));
  d.keys_index = 2;
  d.array_mt = 3;
  d.why[0] = '\0';
  if (decode_text(&d)) return 1;
  lua_settop(L, 1);
  lua_pushnil(L);
  lua_pushstring(L, d.why);
  return 2;
}

/* Sets core.json_decode on the module table at the top of the stack (its
 * array_mt, set later, is read at each call that marks arrays). */
void decode_json_open(lua_State *L) {
  /* no methods and no __gc (it holds no resource): a class all the same,
   * so it is made as every other userdata and names itself */
  class_register(L, KEY_CACHE_CLASS, NULL, NULL);
  class_new(L, KEY_CACHE_CLASS, sizeof(key_cache));
  lua_createtable(L, KEY_SLOTS, 0);
  lua_pushvalue(L, -3);
  lua_pushcclosure(L, core_json_decode, 3);
  lua_setfield(L, -2, "json_decode");
}
