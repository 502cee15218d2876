/*
 * http_parse.c - core.http_response(): an HTTP/1.x response parser for
 * transports that read the socket themselves (lua/truto/transport/ngx.lua
 * reads with nginx cosockets). It is fed bytes and hands back the status,
 * the headers (lower-case names, trimmed values, repeats joined with ", ",
 * exactly as the curl transport gives them), the body in pieces, and
 * whether the connection may be kept alive. Framing (Content-Length,
 * chunked, read-until-close, 1xx interim answers) is Node's http_parser,
 * not ours.
 *
 * Must never do I/O and never call into Lua while parsing: parser callbacks
 * only append to C buffers, so a Lua transport can yield (cosockets) between
 * feeds and LuaJIT never has to yield across a C frame.
 */
#include <http_parser.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "headers.h"
#include "http_parse.h"
#include "strbuf.h"

enum { PHASE_HEAD, PHASE_BODY, PHASE_DONE, PHASE_FAILED };
static const char *const phase_names[] = { "head", "body", "done", "failed" };

typedef struct response {
  http_parser hp;
  int skip_body;    /* the request was HEAD: no body follows any status */
  int phase;
  int status;       /* of the final (non-1xx) answer; 0 until its head is complete */
  int in_value;     /* the last header callback was a value */
  int keep_alive;   /* http_should_keep_alive at the end of the message */
  int extra;        /* bytes arrived after the message ended */
  int has_length;
  uint64_t content_length;
  size_t fed;       /* bytes fed so far */
  strbuf name, value; /* the header being read (it can arrive in pieces) */
  strbuf fields;    /* finished headers: size_t nlen, size_t vlen, name, value */
  strbuf body;      /* body bytes not taken yet */
  char error[200];
  const char *code; /* why it failed: an http_parser errno name, or "closed" */
} response;

static response *to_response(http_parser *hp) { return (response *)hp->data; }

static void commit_header(response *r) {
  size_t lens[2];
  lens[0] = r->name.len;
  lens[1] = r->value.len;
  if (lens[0] > 0) {
    strbuf_add(&r->fields, (const char *)lens, sizeof lens);
    strbuf_add(&r->fields, r->name.data, r->name.len);
    if (r->value.len) strbuf_add(&r->fields, r->value.data, r->value.len);
  }
  if (r->name.failed || r->value.failed) r->fields.failed = 1;
  strbuf_reset(&r->name);
  strbuf_reset(&r->value);
  r->in_value = 0;
}

static int on_message_begin(http_parser *hp) {
  response *r = to_response(hp);
  strbuf_reset(&r->fields);
  strbuf_reset(&r->name);
  strbuf_reset(&r->value);
  r->in_value = 0;
  r->phase = PHASE_HEAD;
  return 0;
}

static int on_header_field(http_parser *hp, const char *at, size_t n) {
  response *r = to_response(hp);
  if (r->in_value) commit_header(r);
  strbuf_add(&r->name, at, n);
  return 0;
}

static int on_header_value(http_parser *hp, const char *at, size_t n) {
  response *r = to_response(hp);
  r->in_value = 1;
  strbuf_add(&r->value, at, n);
  return 0;
}

static int on_headers_complete(http_parser *hp) {
  response *r = to_response(hp);
  if (r->in_value || r->name.len) commit_header(r);
  if (hp->status_code >= 200) {
    r->status = (int)hp->status_code;
    r->phase = PHASE_BODY;
    r->has_length = hp->content_length != UINT64_MAX;
    r->content_length = r->has_length ? hp->content_length : 0;
  }
  return r->skip_body ? 1 : 0; /* 1: this message has no body */
}

static int on_body(http_parser *hp, const char *at, size_t n) {
  strbuf_add(&to_response(hp)->body, at, n);
  return 0;
}

static int on_message_complete(http_parser *hp) {
  response *r = to_response(hp);
  if (hp->status_code < 200) return 0; /* 1xx: the real answer follows */
  r->keep_alive = http_should_keep_alive(hp);
  r->phase = PHASE_DONE;
  http_parser_pause(hp, 1); /* stop here: later bytes are not this answer's */
  return 0;
}

static const http_parser_settings settings = {
  on_message_begin, NULL /* url */, NULL /* status */, on_header_field, on_header_value,
  on_headers_complete, on_body, on_message_complete, NULL /* chunk header */,
  NULL /* chunk complete */
};

static response *check_response(lua_State *L) {
  return (response *)luaL_checkudata(L, 1, HTTP_RESPONSE_MT);
}

static void fail(response *r, const char *message, const char *code) {
  r->phase = PHASE_FAILED;
  r->code = code;
  snprintf(r->error, sizeof r->error, "%s", message);
}

static int push_failure(lua_State *L, const response *r) {
  lua_pushnil(L);
  lua_pushstring(L, r->error);
  lua_pushstring(L, r->code);
  return 3;
}

/*
 * parser:feed(bytes) -> phase | nil, message
 * bytes: what the socket gave; "" means the peer closed the connection.
 * phase: "head" (status and headers not complete yet), "body" (headers
 * complete: status(), headers(), content_length() answer), "done" (the
 * whole answer is in; bytes fed after that only mark it not reusable).
 * A malformed answer or a close before the answer ended gives nil, a
 * message and a code, for this and every later feed: "closed" (the peer
 * closed early), "HPE_HEADER_OVERFLOW" (headers over http_parser's 80 KB)
 * or another http_parser errno name.
 */
static int response_feed(lua_State *L) {
  response *r = check_response(L);
  size_t len, used;
  const char *data = luaL_checklstring(L, 2, &len);
  enum http_errno err;
  if (r->phase == PHASE_FAILED) return push_failure(L, r);
  if (r->phase == PHASE_DONE) {
    if (len) r->extra = 1;
    lua_pushstring(L, phase_names[r->phase]);
    return 1;
  }
  used = http_parser_execute(&r->hp, &settings, len ? data : NULL, len);
  r->fed += len;
  if (r->fields.failed || r->body.failed || r->name.failed || r->value.failed)
    return luaL_error(L, "out of memory");
  err = HTTP_PARSER_ERRNO(&r->hp);
  if (err == HPE_PAUSED) {
    if (used < len) r->extra = 1;
  } else if (len == 0 && r->phase != PHASE_DONE) {
    fail(r, r->fed == 0 ? "empty reply from server (connection closed without an answer)"
                        : "connection closed before the response was complete", "closed");
  } else if (err != HPE_OK) {
    char message[200];
    snprintf(message, sizeof message, "malformed HTTP response: %s (%s)",
             http_errno_description(err), http_errno_name(err));
    fail(r, message, http_errno_name(err));
  } else if (r->hp.upgrade) {
    fail(r, "malformed HTTP response: unexpected protocol upgrade", "upgrade");
  }
  if (r->phase == PHASE_FAILED) return push_failure(L, r);
  lua_pushstring(L, phase_names[r->phase]);
  return 1;
}

/* parser:status() -> the final status code, or nil before its head is in */
static int response_status(lua_State *L) {
  response *r = check_response(L);
  if (r->status) lua_pushinteger(L, r->status);
  else lua_pushnil(L);
  return 1;
}

/* parser:content_length() -> the announced body length, or nil (chunked,
 * read until close, or head not complete) */
static int response_content_length(lua_State *L) {
  response *r = check_response(L);
  if (!r->status || !r->has_length) lua_pushnil(L);
  else if (r->content_length > 9007199254740992ULL) lua_pushnumber(L, (lua_Number)r->content_length);
  else lua_pushinteger(L, (lua_Integer)r->content_length);
  return 1;
}

/* parser:headers() -> { ["lower-case-name"] = "value", ... } of the final
 * answer; repeated names joined with ", " in arrival order; names of 128
 * bytes or more left out (as transfer_push_headers does) */
static int response_headers(lua_State *L) {
  response *r = check_response(L);
  const char *p = r->fields.data, *end;
  lua_newtable(L);
  if (!r->status || p == NULL) return 1; /* no header at all: data is still NULL */
  end = p + r->fields.len;
  while ((size_t)(end - p) >= 2 * sizeof(size_t)) {
    size_t lens[2];
    const char *name;
    memcpy(lens, p, sizeof lens);
    name = p + sizeof lens;
    p = name + lens[0] + lens[1];
    headers_add(L, name, lens[0], name + lens[0], lens[1]);
  }
  return 1;
}

/* parser:take() -> the body bytes parsed since the last take ("" if none) */
static int response_take(lua_State *L) {
  response *r = check_response(L);
  lua_pushlstring(L, r->body.data ? r->body.data : "", r->body.len);
  strbuf_reset(&r->body);
  if (r->body.cap > 256 * 1024) strbuf_free(&r->body);
  return 1;
}

/* parser:keep_alive() -> true when the answer is complete and the
 * connection may carry another request (HTTP/1.1 or keep-alive, no
 * "Connection: close", not read-until-close, nothing after the answer) */
static int response_keep_alive(lua_State *L) {
  response *r = check_response(L);
  lua_pushboolean(L, r->phase == PHASE_DONE && r->keep_alive && !r->extra);
  return 1;
}

static int response_gc(lua_State *L) {
  response *r = check_response(L);
  strbuf_free(&r->name);
  strbuf_free(&r->value);
  strbuf_free(&r->fields);
  strbuf_free(&r->body);
  return 0;
}

static int response_tostring(lua_State *L) {
  response *r = check_response(L);
  lua_pushfstring(L, "truto.http_response (%s)", phase_names[r->phase]);
  return 1;
}

int http_parse_new(lua_State *L) {
  int skip_body = lua_toboolean(L, 1);
  response *r = (response *)lua_newuserdatauv(L, sizeof *r, 0);
  memset(r, 0, sizeof *r);
  http_parser_init(&r->hp, HTTP_RESPONSE);
  r->hp.data = r;
  r->skip_body = skip_body;
  r->phase = PHASE_HEAD;
  strbuf_init(&r->name);
  strbuf_init(&r->value);
  strbuf_init(&r->fields);
  strbuf_init(&r->body);
  luaL_getmetatable(L, HTTP_RESPONSE_MT);
  lua_setmetatable(L, -2);
  return 1;
}

void http_parse_open(lua_State *L) {
  static const luaL_Reg methods[] = {
    { "feed", response_feed },
    { "status", response_status },
    { "content_length", response_content_length },
    { "headers", response_headers },
    { "take", response_take },
    { "keep_alive", response_keep_alive },
    { NULL, NULL }
  };
  luaL_newmetatable(L, HTTP_RESPONSE_MT);
  lua_pushcfunction(L, response_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, response_tostring);
  lua_setfield(L, -2, "__tostring");
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}
