/*
 * operation.c - one API operation compiled for building requests: a plan
 * (the Lua table truto.call makes from truto.api) in; (target, json) out,
 * or an invalid_argument naming the field. Names, types and enum values
 * stay in the plan, a Lua table: no fixed-size copies and no caps.
 * Pure: no I/O, never runs Lua code (raw access only), never raises on
 * user input.
 *
 * plan = {
 *   path = "/unified/m/r",  after_id = "" (present when the path has {id}),
 *   body = false | side,  query = side,
 * }
 * side = { fields = { [name] = spec }, names = "a, b", hints = { [name] = text },
 *          required = { name, ... }, open = bool, account = "integrated_account_id" }
 * spec = { t = <core.FIELD_TYPES code>, values = { [v] = true }, expected = "a, b", min = n }
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "encode_json.h"
#include "encode_query.h"
#include "operation.h"

typedef enum {
  FT_STRING, FT_UUID, FT_ENUM, FT_BOOLEAN, FT_INTEGER, FT_STRING_ARRAY, FT_OBJECT, FT_FILTER
} field_type;

static const char *const type_names[] = {
  "string", "uuid", "enum", "boolean", "integer", "string_array", "object", "filter", NULL
};

/* The scratch state one build uses; kept between builds for its buffers. */
typedef struct builder {
  walk w;
  strbuf prefix;
  strbuf target;
  strbuf json;
} builder;

#define BUILDER_MT "truto.builder"

/* Upvalues of the build and encode closures. */
#define UV_ARRAY_MT lua_upvalueindex(1)
#define UV_BUILDER lua_upvalueindex(2)
#define UV_PLAN lua_upvalueindex(3)
#define UV_SCRATCH lua_upvalueindex(4) /* kept across builds (walk_end empties it) */

/* operation_new turns the named plan into arrays, read in the hot path
 * with lua_rawgeti (no string hashing): */
enum { PLAN_PATH = 1, PLAN_AFTER_ID, PLAN_BODY, PLAN_QUERY };
enum { SIDE_FIELDS = 1, SIDE_OPEN, SIDE_NAMES, SIDE_HINTS, SIDE_REQUIRED, SIDE_ACCOUNT };
enum { SPEC_T = 1, SPEC_VALUES, SPEC_EXPECTED, SPEC_MIN };

static int builder_gc(lua_State *L) {
  builder *b = (builder *)lua_touserdata(L, 1);
  walk_free(&b->w);
  strbuf_free(&b->prefix);
  strbuf_free(&b->target);
  strbuf_free(&b->json);
  return 0;
}

static builder *push_builder(lua_State *L) {
  builder *b = (builder *)lua_newuserdatauv(L, sizeof *b, 0);
  memset(b, 0, sizeof *b);
  walk_init(&b->w);
  strbuf_init(&b->prefix);
  strbuf_init(&b->target);
  strbuf_init(&b->json);
  if (luaL_newmetatable(L, BUILDER_MT)) {
    lua_pushcfunction(L, builder_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return b;
}

/* ---- reading the plan ---- */

/* Pushes fields[name] (a spec table; `fields` is side.fields) and returns
 * 1, or pushes nothing and returns 0 when the side does not describe the
 * key. */
static int push_spec(lua_State *L, int fields, const char *name, size_t len) {
  lua_pushlstring(L, name, len);
  lua_rawget(L, fields);
  if (lua_istable(L, -1)) return 1;
  lua_pop(L, 1);
  return 0;
}

/* push_spec for key k of the walk's open table (no re-interning). */
static int push_key_spec(walk *w, int fields, walk_key k) {
  lua_State *L = w->L;
  walk_push_key_string(w, k);
  lua_rawget(L, fields);
  if (lua_istable(L, -1)) return 1;
  lua_pop(L, 1);
  return 0;
}

static int spec_type(lua_State *L, int spec) {
  int t;
  lua_rawgeti(L, spec, SPEC_T);
  t = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  return t;
}

static int side_flag(lua_State *L, int side, int key) {
  int v;
  lua_rawgeti(L, side, key);
  v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

/* ---- checks ---- */

static int fail_type(walk *w, const char *name, int idx, const char *want) {
  return walk_fail_field(w, name, "must be %s (got %s)", want, luaL_typename(w->L, idx));
}

static int fail_unknown(walk *w, int side, const char *kind, const char *name, size_t len) {
  lua_State *L = w->L;
  char key[64];
  walk_printable(key, sizeof key, name, len);
  lua_rawgeti(L, side, SIDE_HINTS);
  if (lua_istable(L, -1)) {
    lua_pushlstring(L, name, len);
    lua_rawget(L, -2);
    if (lua_type(L, -1) == LUA_TSTRING) {
      walk_fail_field(w, key, "%s", lua_tostring(L, -1));
      lua_pop(L, 2);
      return -1;
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  lua_rawgeti(L, side, SIDE_NAMES);
  walk_fail_field(w, key, "unknown %s (expected one of %s)", kind,
                  lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "none");
  lua_pop(L, 1);
  return -1;
}

static int is_uuid(const char *s, size_t n) {
  size_t i;
  if (n != 36) return 0;
  for (i = 0; i < n; i++) {
    char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return 0;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
      return 0;
  }
  return 1;
}

/* A string, uuid or enum value at idx, checked against spec. */
static int check_string(walk *w, const char *name, int type, int spec, int idx) {
  lua_State *L = w->L;
  size_t n;
  const char *s;
  char got[48];
  if (lua_type(L, idx) != LUA_TSTRING)
    return fail_type(w, name, idx, type == FT_UUID ? "a UUID string" : "a string");
  s = lua_tolstring(L, idx, &n);
  if (type == FT_UUID && !is_uuid(s, n)) {
    walk_printable(got, sizeof got, s, n);
    return walk_fail_field(w, name, "must be a UUID like 62f44730-dd91-461e-bd6a-aedd9e0ad79d (got \"%s\")",
                           got);
  }
  if (type == FT_ENUM) {
    int ok;
    lua_rawgeti(L, spec, SPEC_VALUES);
    lua_pushvalue(L, idx);
    lua_rawget(L, -2);
    ok = lua_toboolean(L, -1);
    lua_pop(L, 2);
    if (ok) return 0;
    walk_printable(got, sizeof got, s, n);
    lua_rawgeti(L, spec, SPEC_EXPECTED);
    walk_fail_field(w, name, "must be one of %s (got \"%s\")",
                    lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?", got);
    lua_pop(L, 1);
    return -1;
  }
  w->depth = 0;
  walk_push_key(w, name, strlen(name));
  if (walk_check_string(w, s, n) < 0) return -1;
  walk_pop(w);
  return 0;
}

static int check_integer(walk *w, const char *name, int spec, int idx) {
  lua_State *L = w->L;
  lua_Number n, min;
  if (lua_type(L, idx) != LUA_TNUMBER) return fail_type(w, name, idx, "a whole number");
  n = lua_tonumber(L, idx);
  if (!lua_isinteger(L, idx) && (n != floor(n) || fabs(n) > 9007199254740992.0))
    return walk_fail_field(w, name, "must be a whole number (got %.17g)", (double)n);
  lua_rawgeti(L, spec, SPEC_MIN);
  min = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : -HUGE_VAL;
  lua_pop(L, 1);
  if (n < min) return walk_fail_field(w, name, "must be at least %.17g (got %.17g)", (double)min, (double)n);
  return 0;
}

/* A sequence of strings at idx (may be empty). */
static int check_string_array(walk *w, const char *name, int idx) {
  lua_State *L = w->L;
  int shape;
  size_t first, count, i;
  if (lua_type(L, idx) != LUA_TTABLE) return fail_type(w, name, idx, "an array of strings");
  walk_push_key(w, name, strlen(name));
  if (walk_enter_table(w, idx, &shape, &first, &count) < 0) return -1;
  if (shape != SHAPE_ARRAY && count > 0) return walk_fail(w, "must be an array of strings, not a table with keys");
  for (i = 1; i <= count; i++) {
    lua_rawgeti(L, idx, (int)i);
    walk_push_index(w, (long long)i);
    if (lua_type(L, -1) != LUA_TSTRING) {
      walk_fail(w, "must be a string (got %s)", luaL_typename(L, -1));
      lua_pop(L, 1);
      return -1;
    } else {
      size_t n;
      const char *s = lua_tolstring(L, -1, &n);
      if (walk_check_string(w, s, n) < 0) { lua_pop(L, 1); return -1; }
    }
    lua_pop(L, 1);
    walk_pop(w);
  }
  walk_leave_table(w, first);
  walk_pop(w);
  return 0;
}

/* Checks the described value at idx against its spec (both sides);
 * `type` is spec_type(spec). */
static int check_field(walk *w, const char *name, int spec, int type, int idx) {
  lua_State *L = w->L;
  switch (type) {
    case FT_STRING: case FT_UUID: case FT_ENUM:
      return check_string(w, name, type, spec, idx);
    case FT_BOOLEAN:
      return lua_type(L, idx) == LUA_TBOOLEAN ? 0 : fail_type(w, name, idx, "a boolean");
    case FT_INTEGER:
      return check_integer(w, name, spec, idx);
    case FT_STRING_ARRAY:
      return check_string_array(w, name, idx);
    case FT_OBJECT:
      return lua_type(L, idx) == LUA_TTABLE ? 0 : fail_type(w, name, idx, "a table");
    case FT_FILTER:
      if (lua_type(L, idx) == LUA_TSTRING) return check_string(w, name, FT_STRING, spec, idx);
      return lua_type(L, idx) == LUA_TTABLE ? 0 : fail_type(w, name, idx, "a string or a table");
  }
  return walk_fail_field(w, name, "has an unknown type in the description");
}

/* ---- the body ---- */

/* Enters the top-level table at idx and checks it has named keys. */
static int enter_top(walk *w, int idx, size_t *first, size_t *count) {
  int shape;
  if (walk_enter_table(w, idx, &shape, first, count) < 0) return -1;
  if (shape == SHAPE_ARRAY && *count > 0)
    return walk_fail(w, "must be a table with named fields, not an array");
  if (shape == SHAPE_ARRAY) *count = 0;
  return 0;
}

/* Fails naming the first of side.required that `tbl` (a table or nil)
 * lacks; `account` is a default for side.account. */
static int check_required(walk *w, int side, int tbl, int account) {
  lua_State *L = w->L;
  int i, n, missing = -1;
  lua_rawgeti(L, side, SIDE_REQUIRED);
  if (!lua_istable(L, -1)) { lua_pop(L, 1); return 0; }
  n = (int)lua_rawlen(L, -1);
  for (i = 1; i <= n && missing < 0; i++) {
    int present = 0, absent = 1;
    lua_rawgeti(L, -1, i);
    if (lua_istable(L, tbl)) {
      lua_pushvalue(L, -1);
      lua_rawget(L, tbl);
      absent = lua_isnil(L, -1);
      present = !absent && !walk_is_null(L, -1);
      lua_pop(L, 1);
    }
    /* the client's default stands in only where the call gave nothing
     * (truto.null there means "send none") */
    if (absent && account && lua_type(L, account) == LUA_TSTRING) {
      lua_rawgeti(L, side, SIDE_ACCOUNT);
      present = lua_rawequal(L, -1, -2);
      lua_pop(L, 1);
    }
    if (!present) {
      char name[64];
      size_t len;
      const char *s = lua_tolstring(L, -1, &len);
      walk_printable(name, sizeof name, s, len);
      if (account) walk_fail_field(w, name, "is required (in the query, or as the client's %s)", name);
      else walk_fail_field(w, name, "is required");
      missing = i;
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return missing < 0 ? 0 : -1;
}

static int build_body(walk *w, int side, int idx) {
  lua_State *L = w->L;
  size_t first, count, i;
  int open = side_flag(L, side, SIDE_OPEN), fields;
  lua_rawgeti(L, side, SIDE_FIELDS);
  fields = lua_gettop(L);
  walk_begin(w, L, UV_ARRAY_MT, "body", UV_SCRATCH);
  if (lua_isnoneornil(L, idx))
    return walk_fail_field(w, "body", "is required (a table of the fields to send)");
  if (!lua_istable(L, idx))
    return walk_fail_field(w, "body", "must be a table (got %s)", luaL_typename(L, idx));
  if (enter_top(w, idx, &first, &count) < 0) return -1;
  strbuf_addc(&w->out, '{');
  for (i = 0; i < count; i++) {
    walk_key k = w->keys[first + i];
    int described = push_key_spec(w, fields, k), value;
    if (!described && !open) return fail_unknown(w, side, "body field", k.s, k.len);
    if (i > 0) strbuf_addc(&w->out, ',');
    if (encode_json_string(w, k.s, k.len) < 0) return -1;
    strbuf_addc(&w->out, ':');
    walk_push_value(w, k);
    value = lua_gettop(L);
    if (described) {
      int type = spec_type(L, value - 1);
      /* a string field's bytes are checked as the encoder writes them */
      if (!(type == FT_STRING && lua_type(L, value) == LUA_TSTRING) &&
          check_field(w, k.s, value - 1, type, value) < 0)
        return -1;
    }
    walk_push_key(w, k.s, k.len);
    if (encode_json_value(w, value) < 0) return -1;
    walk_pop(w);
    lua_pop(L, described ? 2 : 1);
  }
  strbuf_addc(&w->out, '}');
  walk_leave_table(w, first);
  return check_required(w, side, idx, 0);
}

/* ---- the query ---- */

static int encode_query_field(walk *w, builder *b, const char *name, size_t len, int spec, int idx) {
  lua_State *L = w->L;
  int type = spec ? spec_type(L, spec) : -1;
  if (spec && check_field(w, name, spec, type, idx) < 0) return -1;
  switch (type) {
    case FT_STRING: case FT_UUID: case FT_ENUM: {
      size_t n;
      const char *s = lua_tolstring(L, idx, &n);
      query_add_pair(w, name, len, s, n);
      return 0;
    }
    case FT_BOOLEAN:
      query_add_pair(w, name, len, lua_toboolean(L, idx) ? "true" : "false", lua_toboolean(L, idx) ? 4 : 5);
      return 0;
    case FT_STRING_ARRAY: {
      size_t i, count = lua_rawlen(L, idx);
      for (i = 1; i <= count; i++) {
        size_t n;
        const char *s;
        lua_rawgeti(L, idx, (int)i);
        s = lua_tolstring(L, -1, &n);
        if (w->out.len) strbuf_addc(&w->out, '&');
        query_add_escaped(&w->out, name, len);
        strbuf_add(&w->out, "%5B%5D=", 7);
        query_add_escaped(&w->out, s, n);
        lua_pop(L, 1);
      }
      return 0;
    }
    case FT_OBJECT:
      if (lua_rawlen(L, idx) > 0)
        return walk_fail_field(w, name, "must be a table of named parameters, not an array");
      break;
    default: /* integer, filter, and what an open side passes on */
      break;
  }
  /* the value under the escaped name: scalars as name=value, tables in
   * brackets */
  w->depth = 0;
  walk_push_key(w, name, len);
  if (!spec && query_check_key(w, name, len) < 0) return -1;
  strbuf_reset(&b->prefix);
  query_add_escaped(&b->prefix, name, len);
  if (encode_query_value(w, idx, &b->prefix) < 0) return -1;
  walk_pop(w);
  return 0;
}

/* Adds the client's default account as name=value. */
static int add_account(walk *w, int side, int fields, int account) {
  lua_State *L = w->L;
  size_t alen, n;
  const char *aname, *s;
  int spec, rc;
  lua_rawgeti(L, side, SIDE_ACCOUNT);
  aname = lua_tolstring(L, -1, &alen);
  if (!push_spec(L, fields, aname, alen)) { lua_pop(L, 1); return 0; }
  spec = lua_gettop(L);
  rc = check_string(w, aname, spec_type(L, spec), spec, account);
  if (rc == 0) {
    s = lua_tolstring(L, account, &n);
    query_add_pair(w, aname, alen, s, n);
  }
  lua_pop(L, 2);
  return rc;
}

static int compare_names(const char *a, size_t alen, const char *b, size_t blen) {
  int c = memcmp(a, b, alen < blen ? alen : blen);
  if (c != 0) return c;
  return (alen > blen) - (alen < blen);
}

/* The query, keys in bytewise order, with the client's default account
 * slotted in where it sorts when the call gave none. */
static int build_query(walk *w, builder *b, int side, int idx, int account) {
  lua_State *L = w->L;
  size_t first = 0, count = 0, i, alen = 0;
  const char *aname = NULL;
  int open = side_flag(L, side, SIDE_OPEN), fields;
  int have_default = lua_type(L, account) == LUA_TSTRING;
  lua_rawgeti(L, side, SIDE_FIELDS);
  fields = lua_gettop(L);
  walk_begin(w, L, UV_ARRAY_MT, "query", UV_SCRATCH);
  if (!lua_isnoneornil(L, idx)) {
    if (!lua_istable(L, idx))
      return walk_fail_field(w, "query", "must be a table (got %s)", luaL_typename(L, idx));
    if (enter_top(w, idx, &first, &count) < 0) return -1;
  }
  lua_rawgeti(L, side, SIDE_ACCOUNT);
  if (lua_type(L, -1) == LUA_TSTRING) aname = lua_tolstring(L, -1, &alen);
  else have_default = 0;
  lua_pop(L, 1); /* the plan holds the string */

  /* unknown keys first, so a typo is reported before anything else */
  if (!open)
    for (i = 0; i < count; i++) {
      walk_key k = w->keys[first + i];
      if (!push_key_spec(w, fields, k)) return fail_unknown(w, side, "query parameter", k.s, k.len);
      lua_pop(L, 1);
    }
  for (i = 0; i <= count; i++) {
    if (have_default) {
      int before = i == count;
      if (!before) {
        walk_key k = w->keys[first + i];
        int c = compare_names(aname, alen, k.s, k.len);
        if (c == 0) have_default = 0; /* the call's own wins */
        before = c < 0;
      }
      if (before && have_default) {
        if (add_account(w, side, fields, account) < 0) return -1;
        have_default = 0;
      }
    }
    if (i == count) break;
    {
      walk_key k = w->keys[first + i];
      int spec = 0, value;
      if (push_key_spec(w, fields, k)) spec = lua_gettop(L);
      walk_push_value(w, k);
      value = lua_gettop(L);
      if (!walk_is_null(L, value) && encode_query_field(w, b, k.s, k.len, spec, value) < 0) return -1;
      lua_settop(L, spec ? spec - 1 : value - 1);
    }
  }
  if (check_required(w, side, idx, account) < 0) return -1;
  if (count) walk_leave_table(w, first);
  return 0;
}

/* ---- the path ---- */

/* Appends the id as one percent-encoded path segment. */
static int add_id(walk *w, strbuf *target, int idx) {
  lua_State *L = w->L;
  char buf[40];
  size_t n;
  const char *s;
  if (lua_type(L, idx) == LUA_TNUMBER) {
    lua_Number v = lua_tonumber(L, idx);
    if (!lua_isinteger(L, idx) && (v != floor(v) || fabs(v) > 9007199254740992.0))
      return walk_fail_field(w, "id", "must be a non-empty string or an integer (got %.17g)", (double)v);
    if (walk_format_number(w, idx, buf, &n) < 0) return -1;
    strbuf_add(target, buf, n);
    return 0;
  }
  if (lua_type(L, idx) != LUA_TSTRING)
    return walk_fail_field(w, "id", "must be a non-empty string or an integer (got %s)", luaL_typename(L, idx));
  s = lua_tolstring(L, idx, &n);
  if (n == 0) return walk_fail_field(w, "id", "must be a non-empty string or an integer (got \"\")");
  /* "." and ".." are dot-segments: clients and servers resolve them, so
   * the request would go to another path */
  if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
    return walk_fail_field(w, "id", "cannot be \"%s\" (a path dot-segment)", s);
  query_add_escaped(target, s, n);
  return 0;
}

/* Pushes nil, field, message for the error recorded in w; returns 3. */
static int push_failure(lua_State *L, walk *w) {
  lua_pushnil(L);
  lua_pushstring(L, w->failed ? w->field : "request");
  lua_pushstring(L, w->failed ? w->message : "request: out of memory");
  return 3;
}

/*
 * build(body, query, default_account, id) -> target, json_or_nil
 *                                          | nil, field, message
 * target is the path (with the id escaped into it) and "?query" when the
 * query is not empty; json is nil when the operation sends no body.
 */
static int operation_build(lua_State *L) {
  builder *b = (builder *)lua_touserdata(L, UV_BUILDER);
  walk *w = &b->w;
  int plan = UV_PLAN, side, has_body;
  const char *path;
  size_t path_len;
  lua_settop(L, 4);
  w->L = L;
  w->failed = 0;
  strbuf_reset(&b->target);
  lua_rawgeti(L, plan, PLAN_PATH);
  path = lua_tolstring(L, -1, &path_len);
  strbuf_add(&b->target, path, path_len);
  lua_rawgeti(L, plan, PLAN_AFTER_ID);
  if (lua_type(L, -1) == LUA_TSTRING) {
    size_t n;
    const char *after;
    strbuf_addc(&b->target, '/');
    if (add_id(w, &b->target, 4) < 0) return push_failure(L, w);
    after = lua_tolstring(L, -1, &n);
    strbuf_add(&b->target, after, n);
  }
  lua_settop(L, 4);

  /* the body first: its mistakes (a misplaced group_type) explain more */
  lua_rawgeti(L, plan, PLAN_BODY);
  side = lua_gettop(L);
  has_body = lua_istable(L, side);
  if (has_body) {
    int rc = build_body(w, side, 1);
    walk_end(w);
    if (rc < 0 || w->out.failed) return push_failure(L, w);
    strbuf_reset(&b->json);
    strbuf_add(&b->json, w->out.data, w->out.len);
  }
  lua_settop(L, 4);
  lua_rawgeti(L, plan, PLAN_QUERY);
  side = lua_gettop(L);
  {
    int rc = build_query(w, b, side, 2, 3);
    walk_end(w);
    if (rc < 0 || w->out.failed || b->prefix.failed) return push_failure(L, w);
  }
  if (w->out.len) {
    strbuf_addc(&b->target, '?');
    strbuf_add(&b->target, w->out.data, w->out.len);
  }
  if (b->target.failed || b->json.failed) {
    w->failed = 0;
    return push_failure(L, w);
  }
  lua_pushlstring(L, b->target.data, b->target.len);
  if (has_body) lua_pushlstring(L, b->json.data, b->json.len);
  else lua_pushnil(L);
  return 2;
}

/* Copies t[key] of the table at `from` into slot `to` of the table on top. */
static void copy_field(lua_State *L, int from, const char *key, int to) {
  lua_getfield(L, from, key);
  lua_rawseti(L, -2, to);
}

/* Pushes the array form of the named side at `idx` (false for none). */
static void push_side(lua_State *L, int idx) {
  int fields;
  if (!lua_istable(L, idx)) { lua_pushboolean(L, 0); return; }
  lua_createtable(L, 6, 0);
  lua_newtable(L);
  fields = lua_gettop(L);
  lua_getfield(L, idx, "fields");
  if (lua_istable(L, -1)) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      int spec = lua_gettop(L);
      luaL_argcheck(L, lua_type(L, -2) == LUA_TSTRING && lua_istable(L, spec), 1,
                    "plan fields must be name = spec tables");
      lua_pushvalue(L, -2);
      lua_createtable(L, 4, 0);
      copy_field(L, spec, "t", SPEC_T);
      copy_field(L, spec, "values", SPEC_VALUES);
      copy_field(L, spec, "expected", SPEC_EXPECTED);
      copy_field(L, spec, "min", SPEC_MIN);
      lua_rawset(L, fields);
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  lua_rawseti(L, -2, SIDE_FIELDS);
  copy_field(L, idx, "open", SIDE_OPEN);
  copy_field(L, idx, "names", SIDE_NAMES);
  copy_field(L, idx, "hints", SIDE_HINTS);
  copy_field(L, idx, "required", SIDE_REQUIRED);
  copy_field(L, idx, "account", SIDE_ACCOUNT);
}

/* core.operation(plan) -> build function (see operation_build) */
static int operation_new(lua_State *L) {
  int named;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_getfield(L, 1, "path");
  luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING, 1, "plan.path must be a string");
  lua_getfield(L, 1, "query");
  luaL_argcheck(L, lua_istable(L, -1), 1, "plan.query must be a table");
  lua_settop(L, 1);
  named = 1;
  lua_pushvalue(L, lua_upvalueindex(1));
  push_builder(L);
  lua_createtable(L, 4, 0);
  copy_field(L, named, "path", PLAN_PATH);
  copy_field(L, named, "after_id", PLAN_AFTER_ID);
  lua_getfield(L, named, "body");
  push_side(L, lua_gettop(L));
  lua_remove(L, -2);
  lua_rawseti(L, -2, PLAN_BODY);
  lua_getfield(L, named, "query");
  push_side(L, lua_gettop(L));
  lua_remove(L, -2);
  lua_rawseti(L, -2, PLAN_QUERY);
  /* the scratch table, its array part sized so that typical requests never
   * make Lua rehash it (emptied slots stay in the array part) */
  lua_createtable(L, 64, 0);
  lua_pushcclosure(L, operation_build, 4);
  return 1;
}

/* core.encode_json(value [, root]) -> json | nil, field, message */
static int operation_encode_json(lua_State *L) {
  builder *b = (builder *)lua_touserdata(L, UV_BUILDER);
  walk *w = &b->w;
  lua_settop(L, 2);
  walk_begin(w, L, UV_ARRAY_MT, luaL_optstring(L, 2, "value"), 0);
  if (encode_json_value(w, 1) < 0 || w->out.failed) return push_failure(L, w);
  lua_pushlstring(L, w->out.data, w->out.len);
  return 1;
}

void operation_open(lua_State *L) {
  int i, array_mt = lua_gettop(L) - 1; /* stack: array_mt, module */
  lua_pushvalue(L, array_mt);
  lua_pushcclosure(L, operation_new, 1);
  lua_setfield(L, -2, "operation");
  lua_pushvalue(L, array_mt);
  push_builder(L);
  lua_pushcclosure(L, operation_encode_json, 2);
  lua_setfield(L, -2, "encode_json");
  lua_newtable(L);
  for (i = 0; type_names[i]; i++) {
    lua_pushinteger(L, i);
    lua_setfield(L, -2, type_names[i]);
  }
  lua_setfield(L, -2, "FIELD_TYPES");
}
