/*
 * request.c - turns (body, query) into (target, json) for one endpoint, or
 * into an invalid_argument naming the field. Validation reads the compiled
 * schema only: no field name, type or enum is written here. Pure: no I/O,
 * no calls into Lua, never raises on user input.
 */
#include <stdio.h>
#include <string.h>

#include "encode_json.h"
#include "encode_query.h"
#include "request.h"

#define MAX_FIELDS 12
#define MAX_VALUES 8
#define MAX_HINTS 8

typedef enum { FT_STRING, FT_UUID, FT_ENUM, FT_BOOLEAN, FT_STRING_ARRAY, FT_OBJECT } field_type;

static const char *const type_names[] = {
  "string", "uuid", "enum", "boolean", "string_array", "object", NULL
};

typedef struct field {
  char name[48];
  size_t name_len;
  field_type type;
  int required;
  int nvalues;
  char values[MAX_VALUES][24];
  char expected[200]; /* "one of a, b, c" for enums */
} field;

typedef struct hint {
  char name[48];
  char text[160];
} hint;

typedef struct field_set {
  field fields[MAX_FIELDS];
  int n;
  hint hints[MAX_HINTS];
  int nhints;
  char names[200]; /* "name, description, remote_data" for messages */
} field_set;

typedef struct endpoint {
  char path[128];
  field_set body, query;
  walk w;
  strbuf prefix;
  strbuf target;
  strbuf json;
} endpoint;

/* ---- compiling the schema (may raise: a bad schema is our bug) ---- */

static void copy_string_field(lua_State *L, int t, const char *key, char *dst, size_t cap, int required) {
  const char *s;
  size_t n;
  lua_getfield(L, t, key);
  if (lua_isnil(L, -1) && !required) { dst[0] = '\0'; lua_pop(L, 1); return; }
  s = lua_tolstring(L, -1, &n);
  if (s == NULL || n >= cap) luaL_error(L, "schema: bad or too long '%s'", key);
  memcpy(dst, s, n + 1);
  lua_pop(L, 1);
}

static void compile_fields(lua_State *L, int schema, const char *which, field_set *set) {
  int i, n;
  lua_getfield(L, schema, which);
  luaL_checktype(L, -1, LUA_TTABLE);
  n = (int)lua_rawlen(L, -1);
  if (n > MAX_FIELDS) luaL_error(L, "schema: too many %s fields", which);
  set->names[0] = '\0';
  for (i = 0; i < n; i++) {
    field *f = &set->fields[i];
    char type[32];
    int t, j;
    lua_rawgeti(L, -1, i + 1);
    t = lua_gettop(L);
    copy_string_field(L, t, "name", f->name, sizeof f->name, 1);
    f->name_len = strlen(f->name);
    copy_string_field(L, t, "type", type, sizeof type, 1);
    for (j = 0; type_names[j] && strcmp(type_names[j], type) != 0; j++) {}
    if (!type_names[j]) luaL_error(L, "schema: unknown type '%s'", type);
    f->type = (field_type)j;
    lua_getfield(L, t, "required");
    f->required = lua_toboolean(L, -1);
    lua_pop(L, 1);
    f->nvalues = 0;
    f->expected[0] = '\0';
    lua_getfield(L, t, "values");
    if (lua_istable(L, -1)) {
      int k, nv = (int)lua_rawlen(L, -1);
      if (nv > MAX_VALUES) luaL_error(L, "schema: too many values for %s", f->name);
      for (k = 0; k < nv; k++) {
        size_t len;
        const char *v;
        lua_rawgeti(L, -1, k + 1);
        v = lua_tolstring(L, -1, &len);
        if (v == NULL || len >= sizeof f->values[k]) luaL_error(L, "schema: bad value for %s", f->name);
        memcpy(f->values[k], v, len + 1);
        lua_pop(L, 1);
        snprintf(f->expected + strlen(f->expected), sizeof f->expected - strlen(f->expected),
                 "%s%s", k ? ", " : "", v);
      }
      f->nvalues = nv;
    }
    lua_pop(L, 2);
    snprintf(set->names + strlen(set->names), sizeof set->names - strlen(set->names),
             "%s%s", i ? ", " : "", f->name);
  }
  set->n = n;
  lua_pop(L, 1);
}

static void compile_hints(lua_State *L, int schema, const char *which, field_set *set) {
  set->nhints = 0;
  lua_getfield(L, schema, "misplaced");
  if (!lua_istable(L, -1)) { lua_pop(L, 1); return; }
  lua_getfield(L, -1, which);
  if (lua_istable(L, -1)) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      hint *h;
      const char *k, *v;
      if (set->nhints == MAX_HINTS) luaL_error(L, "schema: too many hints");
      h = &set->hints[set->nhints++];
      k = lua_tostring(L, -2);
      v = lua_tostring(L, -1);
      if (!k || !v || strlen(k) >= sizeof h->name || strlen(v) >= sizeof h->text)
        luaL_error(L, "schema: bad hint");
      strcpy(h->name, k);
      strcpy(h->text, v);
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 2);
}

int request_compile(lua_State *L) {
  endpoint *e;
  luaL_checktype(L, 1, LUA_TTABLE);
  e = (endpoint *)lua_newuserdatauv(L, sizeof *e, 0);
  memset(e, 0, sizeof *e);
  walk_init(&e->w);
  strbuf_init(&e->prefix);
  strbuf_init(&e->target);
  strbuf_init(&e->json);
  luaL_getmetatable(L, ENDPOINT_MT);
  lua_setmetatable(L, -2);
  copy_string_field(L, 1, "path", e->path, sizeof e->path, 1);
  compile_fields(L, 1, "body", &e->body);
  compile_fields(L, 1, "query", &e->query);
  compile_hints(L, 1, "body", &e->body);
  compile_hints(L, 1, "query", &e->query);
  return 1;
}

static int endpoint_gc(lua_State *L) {
  endpoint *e = (endpoint *)luaL_checkudata(L, 1, ENDPOINT_MT);
  walk_free(&e->w);
  strbuf_free(&e->prefix);
  strbuf_free(&e->target);
  strbuf_free(&e->json);
  return 0;
}

/* ---- validation and encoding (never raise on user input) ---- */

static const field *find_field(const field_set *set, const char *name, size_t len) {
  int i;
  for (i = 0; i < set->n; i++)
    if (set->fields[i].name_len == len && memcmp(set->fields[i].name, name, len) == 0)
      return &set->fields[i];
  return NULL;
}

static int fail_unknown(walk *w, const field_set *set, const char *kind, const char *name, size_t len) {
  char key[64];
  int i;
  walk_printable(key, sizeof key, name, len);
  for (i = 0; i < set->nhints; i++)
    if (strcmp(set->hints[i].name, key) == 0)
      return walk_fail_field(w, key, "%s", set->hints[i].text);
  return walk_fail_field(w, key, "unknown %s (expected one of %s)", kind, set->names);
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

static int fail_type(walk *w, const field *f, lua_State *L, int idx, const char *want) {
  return walk_fail_field(w, f->name, "must be %s (got %s)", want, luaL_typename(L, idx));
}

/* A string-valued query parameter: string, uuid or enum. */
static int check_query_string(walk *w, const field *f, int idx) {
  lua_State *L = w->L;
  size_t n;
  const char *s;
  int i;
  if (lua_type(L, idx) != LUA_TSTRING)
    return fail_type(w, f, L, idx, f->type == FT_UUID ? "a UUID string" : "a string");
  s = lua_tolstring(L, idx, &n);
  if (f->type == FT_UUID && !is_uuid(s, n)) {
    char got[48];
    walk_printable(got, sizeof got, s, n);
    return walk_fail_field(w, f->name, "must be a UUID like 62f44730-dd91-461e-bd6a-aedd9e0ad79d (got \"%s\")",
                           got);
  }
  if (f->type == FT_ENUM) {
    char got[48];
    for (i = 0; i < f->nvalues; i++)
      if (strlen(f->values[i]) == n && memcmp(f->values[i], s, n) == 0) return 0;
    walk_printable(got, sizeof got, s, n);
    return walk_fail_field(w, f->name, "must be one of %s (got \"%s\")", f->expected, got);
  }
  w->depth = 0;
  walk_push_key(w, f->name, f->name_len);
  if (walk_check_string(w, s, n) < 0) return -1;
  walk_pop(w);
  return 0;
}

static int encode_query_field(walk *w, endpoint *e, const field *f, int idx) {
  lua_State *L = w->L;
  size_t n, i;
  switch (f->type) {
    case FT_STRING:
    case FT_UUID:
    case FT_ENUM: {
      const char *s;
      if (check_query_string(w, f, idx) < 0) return -1;
      s = lua_tolstring(L, idx, &n);
      query_add_pair(w, f->name, f->name_len, s, n);
      return 0;
    }
    case FT_BOOLEAN:
      if (lua_type(L, idx) != LUA_TBOOLEAN) return fail_type(w, f, L, idx, "a boolean");
      query_add_pair(w, f->name, f->name_len, lua_toboolean(L, idx) ? "true" : "false",
                     lua_toboolean(L, idx) ? 4 : 5);
      return 0;
    case FT_STRING_ARRAY: {
      int shape;
      size_t first, count;
      if (lua_type(L, idx) != LUA_TTABLE) return fail_type(w, f, L, idx, "an array of strings");
      walk_push_key(w, f->name, f->name_len);
      if (walk_enter_table(w, idx, &shape, &first, &count) < 0) return -1;
      if (shape != SHAPE_ARRAY && count > 0) return walk_fail(w, "must be an array of strings, not a table with keys");
      for (i = 1; i <= count; i++) {
        lua_rawgeti(L, idx, (int)i);
        walk_push_index(w, (long long)i);
        if (lua_type(L, -1) != LUA_TSTRING) {
          walk_fail(w, "must be a string (got %s)", luaL_typename(L, -1));
          lua_pop(L, 1);
          return -1;
        }
        if (w->out.len) strbuf_addc(&w->out, '&');
        query_add_escaped(&w->out, f->name, f->name_len);
        strbuf_add(&w->out, "%5B%5D=", 7);
        if (encode_query_scalar(w, -1) < 0) { lua_pop(L, 1); return -1; }
        lua_pop(L, 1);
        walk_pop(w);
      }
      walk_leave_table(w, first);
      walk_pop(w);
      return 0;
    }
    case FT_OBJECT: {
      int rc;
      if (lua_type(L, idx) != LUA_TTABLE) return fail_type(w, f, L, idx, "a table");
      if (lua_rawlen(L, idx) > 0)
        return walk_fail_field(w, f->name, "must be a table of named parameters, not an array");
      strbuf_reset(&e->prefix);
      query_add_escaped(&e->prefix, f->name, f->name_len);
      walk_push_key(w, f->name, f->name_len);
      rc = encode_query_value(w, idx, &e->prefix);
      if (rc == 0) walk_pop(w);
      return rc;
    }
  }
  return -1;
}

static int encode_body_field(walk *w, const field *f, int idx) {
  lua_State *L = w->L;
  int rc;
  switch (f->type) {
    case FT_OBJECT:
      if (lua_type(L, idx) != LUA_TTABLE) return fail_type(w, f, L, idx, "a table");
      break;
    case FT_BOOLEAN:
      if (lua_type(L, idx) != LUA_TBOOLEAN) return fail_type(w, f, L, idx, "a boolean");
      break;
    default:
      if (lua_type(L, idx) != LUA_TSTRING) return fail_type(w, f, L, idx, "a string");
      break;
  }
  walk_push_key(w, f->name, f->name_len);
  rc = encode_json_value(w, idx);
  if (rc == 0) walk_pop(w);
  return rc;
}

/* Enters the top-level table at idx and checks it has named keys. */
static int enter_top(walk *w, int idx, size_t *first, size_t *count) {
  int shape;
  if (walk_enter_table(w, idx, &shape, first, count) < 0) return -1;
  if (shape == SHAPE_ARRAY && *count > 0)
    return walk_fail(w, "must be a table with named fields, not an array");
  if (shape == SHAPE_ARRAY) *count = 0;
  return 0;
}

static int build_body(walk *w, endpoint *e, int idx) {
  lua_State *L = w->L;
  size_t first, count, i;
  walk_begin(w, L, lua_upvalueindex(1), "body");
  if (lua_isnoneornil(L, idx)) { strbuf_add(&w->out, "{}", 2); return 0; }
  if (!lua_istable(L, idx))
    return walk_fail_field(w, "body", "must be a table (got %s)", luaL_typename(L, idx));
  if (enter_top(w, idx, &first, &count) < 0) return -1;
  strbuf_addc(&w->out, '{');
  for (i = 0; i < count; i++) {
    walk_key k = w->keys[first + i];
    const field *f = find_field(&e->body, k.s, k.len);
    if (f == NULL) return fail_unknown(w, &e->body, "body field", k.s, k.len);
    if (i > 0) strbuf_addc(&w->out, ',');
    if (encode_json_string(w, k.s, k.len) < 0) return -1;
    strbuf_addc(&w->out, ':');
    lua_pushvalue(L, k.slot);
    if (encode_body_field(w, f, lua_gettop(L)) < 0) return -1;
    lua_pop(L, 1);
  }
  strbuf_addc(&w->out, '}');
  walk_leave_table(w, first);
  return 0;
}

/* The query, keys in bytewise order, with the client's default account
 * slotted in where it sorts when the call gave none. */
static int build_query(walk *w, endpoint *e, int idx, int account_idx) {
  lua_State *L = w->L;
  size_t first = 0, count = 0, i;
  int j, have_default = lua_type(L, account_idx) == LUA_TSTRING;
  const field *account = NULL;
  walk_begin(w, L, lua_upvalueindex(1), "query");
  if (!lua_isnoneornil(L, idx)) {
    if (!lua_istable(L, idx))
      return walk_fail_field(w, "query", "must be a table (got %s)", luaL_typename(L, idx));
    if (enter_top(w, idx, &first, &count) < 0) return -1;
  }
  for (j = 0; j < e->query.n; j++)
    if (e->query.fields[j].type == FT_UUID && e->query.fields[j].required) account = &e->query.fields[j];

  /* unknown keys first, so a typo is reported before anything else */
  for (i = 0; i < count; i++) {
    walk_key k = w->keys[first + i];
    if (find_field(&e->query, k.s, k.len) == NULL)
      return fail_unknown(w, &e->query, "query parameter", k.s, k.len);
  }
  for (i = 0; i <= count; i++) {
    const field *f = NULL;
    if (have_default && account) {
      size_t alen = strlen(account->name);
      int before = i == count;
      if (!before) {
        walk_key k = w->keys[first + i];
        size_t n = k.len < alen ? k.len : alen;
        int c = memcmp(account->name, k.s, n);
        before = c < 0 || (c == 0 && alen < k.len);
        if (c == 0 && alen == k.len) have_default = 0; /* the call's own wins */
      }
      if (before && have_default) {
        if (check_query_string(w, account, account_idx) < 0) return -1;
        {
          size_t n;
          const char *s = lua_tolstring(L, account_idx, &n);
          query_add_pair(w, account->name, alen, s, n);
        }
        have_default = 0;
      }
    }
    if (i == count) break;
    {
      walk_key k = w->keys[first + i];
      f = find_field(&e->query, k.s, k.len);
      lua_pushvalue(L, k.slot);
      if (walk_is_null(L, -1)) { lua_pop(L, 1); continue; }
      if (encode_query_field(w, e, f, lua_gettop(L)) < 0) return -1;
      lua_pop(L, 1);
    }
  }
  /* required parameters */
  for (j = 0; j < e->query.n; j++) {
    const field *f = &e->query.fields[j];
    int present = 0;
    if (!f->required) continue;
    if (f == account && lua_type(L, account_idx) == LUA_TSTRING) present = 1;
    for (i = 0; i < count && !present; i++) {
      walk_key k = w->keys[first + i];
      if (f->name_len == k.len && memcmp(f->name, k.s, k.len) == 0) {
        lua_pushvalue(L, k.slot);
        present = !walk_is_null(L, -1);
        lua_pop(L, 1);
      }
    }
    if (!present)
      return walk_fail_field(w, f->name, "is required (in the query, or as the client's %s)", f->name);
  }
  if (count) walk_leave_table(w, first);
  return 0;
}

/* Pushes nil, field, message for the error recorded in w; returns 3. */
static int push_failure(lua_State *L, walk *w) {
  lua_pushnil(L);
  lua_pushstring(L, w->field);
  lua_pushstring(L, w->failed ? w->message : "out of memory");
  return 3;
}

/*
 * endpoint:build(body, query, default_account) -> target, json
 *                                             | nil, field, message
 * target is "<path>?<query>" (no "?" when the query is empty).
 */
static int endpoint_build(lua_State *L) {
  endpoint *e = (endpoint *)luaL_checkudata(L, 1, ENDPOINT_MT);
  walk *w = &e->w;
  w->L = L;
  lua_settop(L, 4);
  /* the body first: its mistakes (a misplaced group_type) explain more */
  if (build_body(w, e, 2) < 0 || w->out.failed) return push_failure(L, w);
  strbuf_reset(&e->json);
  strbuf_add(&e->json, w->out.data, w->out.len);
  if (build_query(w, e, 3, 4) < 0 || w->out.failed || e->prefix.failed) return push_failure(L, w);
  strbuf_reset(&e->target);
  strbuf_adds(&e->target, e->path);
  if (w->out.len) {
    strbuf_addc(&e->target, '?');
    strbuf_add(&e->target, w->out.data, w->out.len);
  }
  if (e->target.failed || e->json.failed) {
    w->failed = 0;
    return push_failure(L, w);
  }
  lua_pushlstring(L, e->target.data, e->target.len);
  lua_pushlstring(L, e->json.data, e->json.len);
  return 2;
}

/* endpoint:encode_json(value [, root]) -> json | nil, field, message */
static int endpoint_encode_json(lua_State *L) {
  endpoint *e = (endpoint *)luaL_checkudata(L, 1, ENDPOINT_MT);
  walk *w = &e->w;
  lua_settop(L, 3);
  walk_begin(w, L, lua_upvalueindex(1), luaL_optstring(L, 3, "value"));
  if (encode_json_value(w, 2) < 0 || w->out.failed) return push_failure(L, w);
  lua_pushlstring(L, w->out.data, w->out.len);
  return 1;
}

void request_open(lua_State *L) {
  static const luaL_Reg methods[] = {
    { "build", endpoint_build },
    { "encode_json", endpoint_encode_json },
    { NULL, NULL }
  };
  /* stack: array_mt */
  luaL_newmetatable(L, ENDPOINT_MT);
  lua_pushcfunction(L, endpoint_gc);
  lua_setfield(L, -2, "__gc");
  lua_newtable(L);
  lua_pushvalue(L, -3);
  luaL_setfuncs(L, methods, 1);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 2); /* the metatable and the array_mt copy */
}
