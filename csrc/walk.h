/*
 * walk.h - what the JSON and query encoders share: the walk state (output
 * buffer, path of the value being encoded, cycle guard, key scratch), table
 * classification, scalar checks and number formatting.
 *
 * Encoders never raise and never call back into Lua (raw access only, no
 * metamethods): a bad value sets one error naming its path
 * (`remote_data.a[3]`) and the walk unwinds with -1.
 */
#ifndef TRUTO_WALK_H
#define TRUTO_WALK_H

#include "compat.h"
#include "strbuf.h"

/* The core's own names stay inside core.so: a host that exports the same
 * names (Neovim exports lua-cjson's strbuf_init) must never be called in
 * their place. Only luaopen_truto_core (core.c) is exported. */
#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

#define WALK_MAX_DEPTH 64      /* nesting below a top-level field */
#define WALK_ERR_SIZE 1024
#define WALK_STACK_KEYS 128    /* open keys whose values stay on the Lua stack */

typedef struct walk_seg {
  const char *key;  /* NULL for an array index */
  size_t klen;
  long long index;  /* 1-based, as Lua users count */
} walk_seg;

typedef struct walk_key {
  const char *s;   /* kept alive by the table being walked (never changed during a walk) */
  size_t len;
  int slot;        /* > 0: index in the scratch table of the key's value (the key
                      at slot + 1); < 0: minus the Lua stack index of the value
                      (a copy of the key just below it) */
} walk_key;

typedef struct walk {
  lua_State *L;
  strbuf out;
  int depth;
  walk_seg path[WALK_MAX_DEPTH + 2];
  const void *open[WALK_MAX_DEPTH + 2];  /* tables being walked: cycle guard */
  walk_key *keys;                         /* stack of sorted object keys */
  size_t nkeys, keycap;
  int array_mt;                           /* stack index of truto.array's metatable, or 0 */
  int scratch;                            /* stack index of the values of open keys */
  int nvalues;                            /* slots used in scratch now */
  int maxvalues;                          /* slots used since walk_begin */
  int stacked;                            /* open keys whose values are on the stack */
  const char *root;                       /* names the value itself in errors (depth 0) */
  char field[256];
  char message[WALK_ERR_SIZE];
  int failed;
} walk;

enum walk_shape { SHAPE_OBJECT, SHAPE_ARRAY };

/* Bytewise order of two byte strings (the order of object keys); most
 * keys differ in their first byte, so that is compared inline. */
static inline int walk_compare_bytes(const char *a, size_t alen, const char *b, size_t blen) {
  size_t n = alen < blen ? alen : blen;
  int c;
  if (n && a[0] != b[0]) return (unsigned char)a[0] < (unsigned char)b[0] ? -1 : 1;
  c = n ? memcmp(a, b, n) : 0;
  if (c != 0) return c;
  return (alen > blen) - (alen < blen);
}

void walk_init(walk *w);
void walk_free(walk *w);
/* Starts a walk. `scratch` is the stack index of a table that holds the
 * values of the keys of open tables (a Lua table, not the Lua stack: a wide
 * object must not run into the C stack limit of Lua 5.1 and LuaJIT); 0
 * pushes a new one, which the caller pops (or leaves below its results).
 * A kept scratch table is emptied by walk_end. */
void walk_begin(walk *w, lua_State *L, int array_mt, const char *root, int scratch);

/* Drops the references the scratch table holds (so a kept one does not
 * keep the walked values alive). */
void walk_end(walk *w);

/* The stack index of the value of key k of an open table: where the walk
 * keeps it, or pushed from the scratch table (then *pushed is 1 and the
 * caller pops it). */
static inline int walk_value(walk *w, walk_key k, int *pushed) {
  if (k.slot < 0) {
    *pushed = 0;
    return -k.slot;
  }
  lua_rawgeti(w->L, w->scratch, k.slot);
  *pushed = 1;
  return lua_gettop(w->L);
}

/* Records an error at the current path; always returns -1. */
int walk_fail(walk *w, const char *fmt, ...);
/* Records an error about a top-level field (no path below it). */
int walk_fail_field(walk *w, const char *field, const char *fmt, ...);

/* The path of the value being walked: a key or an index deeper, or back. */
static inline void walk_push_key(walk *w, const char *key, size_t len) {
  walk_seg *s = &w->path[w->depth++];
  s->key = key;
  s->klen = len;
  s->index = 0;
}

static inline void walk_push_index(walk *w, long long index) {
  walk_seg *s = &w->path[w->depth++];
  s->key = NULL;
  s->klen = 0;
  s->index = index;
}

static inline void walk_pop(walk *w) { w->depth--; }

/*
 * Classifies the table at `idx`: an object (string keys, collected sorted
 * onto w->keys from *first, *count of them, each value kept in the scratch
 * table at keys[i].slot so no lookup by name is needed) or an array
 * (1..*count). Tables with a metatable other than truto.array's are
 * refused: a proxy's __index/__pairs would encode as {} (raw access only).
 * Enters the table (cycle and depth guard); pair with walk_leave_table.
 * Returns 0 or -1 (error recorded).
 */
int walk_enter_table(walk *w, int idx, int *shape, size_t *first, size_t *count);
void walk_leave_table(walk *w, size_t first);

/* Copies n bytes of s into dst (cap >= 8) fit for a message: control
 * characters, quotes, backslashes and bytes that are not UTF-8 become '?';
 * a cut (at cap - 4 bytes, never inside a character) ends in "...". */
void walk_printable(char *dst, size_t cap, const char *s, size_t n);

/* Checks a string is valid UTF-8 without NUL; 0 or -1 (error recorded). */
int walk_check_string(walk *w, const char *s, size_t n);

/* Records why s is refused at byte `at` (NUL or bad UTF-8); returns -1. */
int walk_fail_string(walk *w, const char *s, size_t at);

/* Formats the number at `idx` (integers exactly, floats shortest
 * round-trip); 0 or -1 for NaN and infinities. */
int walk_format_number(walk *w, int idx, char *buf, size_t *len);
/* The same for a path segment or a query value, where text has no float
 * type: an integral float within 2^53 (1001.0, as lua-cjson decodes every
 * number on 5.4; 1e15) is written as the integer's digits on every Lua. */
int walk_format_text_number(walk *w, int idx, char *buf, size_t *len);

/* Is the value at idx JSON null (truto.null, a NULL light userdata)? */
static inline int walk_is_null(lua_State *L, int idx) {
  return lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == NULL;
}

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
