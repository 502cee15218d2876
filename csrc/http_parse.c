/*
 * http_parse.c - core.http_response(): an HTTP/1.x response parser for
 * transports that read the socket themselves (lua/truto/transport/ngx.lua
 * reads with nginx cosockets). It is fed bytes and hands back the status,
 * the headers (lower-case names, trimmed values, repeats joined with ", ",
 * exactly as the curl transport gives them), the body in pieces, and
 * whether the connection may be kept alive. Framing: Content-Length,
 * chunked (last coding), read-until-close, no body for HEAD/1xx/204/304,
 * 1xx interim answers skipped. Our own code, no library: Node's
 * http_parser is archived upstream. fuzz/fuzz_http.c fuzzes it.
 *
 * One limit on what a server can make us hold: HTTP_MAX_HEADER_BYTES of
 * status and header lines per answer, 1xx interim heads and trailers
 * included (the curl transport enforces the same number). Chunk-size
 * lines are bounded too; the body is bounded by the caller, who takes it
 * piece by piece.
 *
 * Must never do I/O and never call into Lua while parsing, so a Lua
 * transport can yield (cosockets) between feeds and LuaJIT never has to
 * yield across a C frame. Must never read past the bytes it was given.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "class.h"
#include "headers.h"
#include "http_parse.h"
#include "strbuf.h"

/* A chunk-size line ("1a2b;ext=...") longer than this is refused. */
#define CHUNK_LINE_MAX 4096
/* Lengths a Lua integer can hold; more is refused as malformed. */
#define LENGTH_MAX 0x7fffffffffffffffULL

enum { PHASE_HEAD, PHASE_BODY, PHASE_DONE, PHASE_FAILED };
static const char *const phase_names[] = { "head", "body", "done", "failed" };

/* How the final answer's body is framed. */
enum { BODY_NONE, BODY_LENGTH, BODY_CHUNKED, BODY_UNTIL_CLOSE };
/* Where a chunked body is. */
enum { CHUNK_SIZE, CHUNK_DATA, CHUNK_DATA_END, CHUNK_TRAILER };

typedef struct response {
  int skip_body;       /* the request was HEAD: no body follows any status */
  int phase;
  int status;          /* of the final (non-1xx) answer; 0 until its head is complete */
  /* the head being read (reset for each 1xx interim head) */
  int head_started;    /* its status line was read */
  int head_status, minor;
  int conn_close, conn_keep_alive, te_seen, te_chunked, has_length;
  uint64_t content_length;
  size_t last_field;   /* offset in `fields` of the last header's record */
  int has_field;
  /* the body */
  int mode, chunk_state;
  uint64_t left;       /* bytes left: of the Content-Length body, or of the chunk */
  size_t head_room;    /* header bytes still allowed (HTTP_MAX_HEADER_BYTES at start) */
  size_t chunk_room;   /* bytes still allowed on the chunk-size line being read */
  int keep_alive;      /* the answer allows reuse (decided when it is done) */
  int extra;           /* bytes arrived after the answer ended */
  size_t fed;          /* bytes fed so far */
  strbuf line;         /* a line that arrived in pieces */
  strbuf fields;       /* finished headers: size_t nlen, size_t vlen, name, value */
  strbuf body;         /* body bytes not taken yet */
  char error[200];
  const char *code;    /* why it failed: see response_feed */
} response;

static response *check_response(lua_State *L) {
  return (response *)class_check(L, 1, HTTP_RESPONSE_CLASS);
}

static void fail(response *r, const char *code, const char *message) {
  r->phase = PHASE_FAILED;
  r->code = code;
  snprintf(r->error, sizeof r->error, "%s", message);
}

static void malformed(response *r, const char *code, const char *what) {
  char message[200];
  snprintf(message, sizeof message, "malformed HTTP response: %s", what);
  fail(r, code, message);
}

static int is_token_char(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return 1;
  return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int is_space(char c) { return c == ' ' || c == '\t'; }

static int equals_nocase(const char *s, size_t n, const char *lower) {
  size_t i;
  if (strlen(lower) != n) return 0;
  for (i = 0; i < n; i++) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
    if (c != lower[i]) return 0;
  }
  return 1;
}

static void trim(const char **s, size_t *n) {
  while (*n && is_space(**s)) { (*s)++; (*n)--; }
  while (*n && is_space((*s)[*n - 1])) (*n)--;
}

/*
 * Takes one line from *p..end. Returns 1 with the line (without its "\n"
 * and any "\r" before it) in *line, *len, pointing into the input or into
 * r->line (which the caller resets after use); 0 when the input ran out
 * first (what there was is kept in r->line); -1 when the line would pass
 * *room bytes. *room goes down by the bytes consumed.
 */
static int next_line(response *r, const char **p, const char *end, size_t *room,
                     const char **line, size_t *len) {
  const char *nl = (const char *)memchr(*p, '\n', (size_t)(end - *p));
  size_t n = nl ? (size_t)(nl - *p) + 1 : (size_t)(end - *p);
  if (n > *room) return -1;
  *room -= n;
  if (nl && r->line.len == 0) {
    *line = *p;
    *len = n - 1;
  } else {
    strbuf_add(&r->line, *p, n);
    if (!nl || r->line.failed) {
      *p += n;
      return 0;
    }
    *line = r->line.data;
    *len = r->line.len - 1;
  }
  *p += n;
  if (*len && (*line)[*len - 1] == '\r') (*len)--;
  return 1;
}

/* "HTTP/1.x NNN reason"; 1 on success */
static int read_status_line(response *r, const char *s, size_t n) {
  size_t i;
  if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 || s[7] < '0' || s[7] > '9' || s[8] != ' ') return 0;
  if (s[9] < '1' || s[9] > '9' || s[10] < '0' || s[10] > '9' || s[11] < '0' || s[11] > '9') return 0;
  if (n > 12 && s[12] != ' ') return 0;
  for (i = 13; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if ((c < 0x20 && c != '\t') || c == 0x7f) return 0;
  }
  r->minor = s[7] - '0';
  r->head_status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
  r->head_started = 1;
  return 1;
}

/* Digits only, at most LENGTH_MAX; 1 on success */
static int read_length(const char *s, size_t n, uint64_t *out) {
  uint64_t v = 0;
  size_t i;
  if (n == 0) return 0;
  for (i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9' || v > (LENGTH_MAX - 9) / 10) return 0;
    v = v * 10 + (uint64_t)(s[i] - '0');
  }
  *out = v;
  return 1;
}

/* What a header means for framing and reuse; 0 on a bad value. */
static int note_header(response *r, const char *name, size_t nlen, const char *value, size_t vlen) {
  if (equals_nocase(name, nlen, "content-length")) {
    uint64_t length;
    if (!read_length(value, vlen, &length)) return 0;
    if (r->has_length && length != r->content_length) return 0;
    r->has_length = 1;
    r->content_length = length;
  } else if (equals_nocase(name, nlen, "transfer-encoding") || equals_nocase(name, nlen, "connection")) {
    int te = nlen == 17;
    const char *p = value, *end = value + vlen;
    while (p < end) {
      const char *comma = (const char *)memchr(p, ',', (size_t)(end - p));
      const char *token = p;
      size_t tlen = (size_t)((comma ? comma : end) - p);
      trim(&token, &tlen);
      if (tlen == 0) {
        /* empty list elements are allowed */
      } else if (te) {
        r->te_seen = 1;
        r->te_chunked = equals_nocase(token, tlen, "chunked"); /* the last coding decides */
      } else if (equals_nocase(token, tlen, "close")) {
        r->conn_close = 1;
      } else if (equals_nocase(token, tlen, "keep-alive")) {
        r->conn_keep_alive = 1;
      }
      p = comma ? comma + 1 : end;
    }
  }
  return 1;
}

/* One header line of the head being read; 0 on a malformed one. */
static int read_header_line(response *r, const char *s, size_t n) {
  const char *colon, *value;
  size_t nlen, vlen, i, lens[2];
  if (is_space(s[0])) {
    /* obs-fold: a continuation of the previous value, joined with a space */
    if (!r->has_field) return 0;
    trim(&s, &n);
    for (i = 0; i < n; i++) {
      unsigned char c = (unsigned char)s[i];
      if ((c < 0x20 && c != '\t') || c == 0x7f) return 0;
    }
    if (n == 0) return 1;
    memcpy(lens, r->fields.data + r->last_field, sizeof lens);
    if (lens[1] > 0) {
      strbuf_addc(&r->fields, ' ');
      lens[1]++;
    }
    strbuf_add(&r->fields, s, n);
    lens[1] += n;
    if (!r->fields.failed) memcpy(r->fields.data + r->last_field, lens, sizeof lens);
    /* what the folded value means is not looked at again: framing headers
     * are never folded by real servers, and a fold cannot make one valid */
    return 1;
  }
  colon = (const char *)memchr(s, ':', n);
  if (colon == NULL || colon == s) return 0;
  nlen = (size_t)(colon - s);
  for (i = 0; i < nlen; i++)
    if (!is_token_char((unsigned char)s[i])) return 0;
  value = colon + 1;
  vlen = n - nlen - 1;
  trim(&value, &vlen);
  for (i = 0; i < vlen; i++) {
    unsigned char c = (unsigned char)value[i];
    if ((c < 0x20 && c != '\t') || c == 0x7f) return 0;
  }
  if (!note_header(r, s, nlen, value, vlen)) return -1;
  lens[0] = nlen;
  lens[1] = vlen;
  r->last_field = r->fields.len;
  r->has_field = 1;
  strbuf_add(&r->fields, (const char *)lens, sizeof lens);
  strbuf_add(&r->fields, s, nlen);
  strbuf_add(&r->fields, value, vlen);
  return 1;
}

static void finish(response *r) {
  r->phase = PHASE_DONE;
  if (r->mode == BODY_UNTIL_CLOSE) r->keep_alive = 0;
}

/* Forgets the head just read (a 1xx: the real answer follows). */
static void next_head(response *r) {
  r->head_started = 0;
  r->head_status = r->minor = 0;
  r->conn_close = r->conn_keep_alive = r->te_seen = r->te_chunked = r->has_length = 0;
  r->content_length = 0;
  r->has_field = 0;
  strbuf_reset(&r->fields);
}

/* The blank line after the headers: decide what follows. */
static void end_of_head(response *r) {
  if (r->head_status == 101) {
    malformed(r, "upgrade", "unexpected protocol upgrade (101)");
    return;
  }
  if (r->head_status < 200) {
    next_head(r);
    return;
  }
  r->status = r->head_status;
  r->phase = PHASE_BODY;
  r->keep_alive = r->minor >= 1 ? !r->conn_close : (r->conn_keep_alive && !r->conn_close);
  if (r->te_seen) {
    /* Transfer-Encoding overrides Content-Length (RFC 9112 6.3); a server
     * sending both is not trusted with the connection afterwards */
    if (r->has_length) r->keep_alive = 0;
    r->has_length = 0;
  }
  if (r->skip_body || r->status == 204 || r->status == 304) {
    r->mode = BODY_NONE;
    finish(r);
  } else if (r->te_seen) {
    r->mode = r->te_chunked ? BODY_CHUNKED : BODY_UNTIL_CLOSE;
    r->chunk_state = CHUNK_SIZE;
    r->chunk_room = CHUNK_LINE_MAX;
  } else if (r->has_length) {
    r->mode = BODY_LENGTH;
    r->left = r->content_length;
    if (r->left == 0) finish(r);
  } else {
    r->mode = BODY_UNTIL_CLOSE;
  }
}

static void headers_too_large(response *r) {
  char message[200];
  snprintf(message, sizeof message, "the answer's headers pass %d bytes (256 KiB, 1xx interim "
           "answers included)", HTTP_MAX_HEADER_BYTES);
  fail(r, "too_large", message);
}

/* Status line and headers, 1xx heads included, until the final head ends. */
static void parse_head(response *r, const char **p, const char *end) {
  while (*p < end && r->phase == PHASE_HEAD) {
    const char *line;
    size_t len;
    int got = next_line(r, p, end, &r->head_room, &line, &len);
    if (got < 0) {
      headers_too_large(r);
      return;
    }
    if (got == 0) {
      /* not HTTP: say so at once rather than wait for a line end */
      size_t n = r->line.len < 7 ? r->line.len : 7;
      if (!r->head_started && n > 0 && !(r->line.len == 1 && r->line.data[0] == '\r')
          && memcmp(r->line.data, "HTTP/1.", n) != 0)
        malformed(r, "bad_status_line", "bad status line");
      return;
    }
    if (!r->head_started) {
      /* blank lines before a status line are tolerated (they still count) */
      if (len > 0 && !read_status_line(r, line, len)) malformed(r, "bad_status_line", "bad status line");
    } else if (len == 0) {
      end_of_head(r);
    } else {
      int ok = read_header_line(r, line, len);
      if (ok < 0) malformed(r, "bad_content_length", "bad Content-Length");
      else if (ok == 0) malformed(r, "bad_header", "bad header line");
    }
    strbuf_reset(&r->line);
  }
}

/* "1a2b", "1a2b ; name=value": the size; 0 on a bad line */
static int read_chunk_size(const char *s, size_t n, uint64_t *out) {
  uint64_t v = 0;
  size_t i = 0;
  for (; i < n; i++) {
    char c = s[i];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
          : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0) break;
    if (v > (LENGTH_MAX - 15) / 16) return 0;
    v = v * 16 + (uint64_t)d;
  }
  if (i == 0) return 0;
  while (i < n && is_space(s[i])) i++;
  if (i < n && s[i] != ';') return 0;
  *out = v;
  return 1;
}

static void take_body(response *r, const char **p, const char *end, uint64_t *left) {
  size_t n = (size_t)(end - *p);
  if (left && *left < n) n = (size_t)*left;
  strbuf_add(&r->body, *p, n);
  *p += n;
  if (left) *left -= n;
}

static void parse_chunked(response *r, const char **p, const char *end) {
  while (*p < end && r->phase == PHASE_BODY) {
    const char *line;
    size_t len;
    int got;
    if (r->chunk_state == CHUNK_DATA) {
      take_body(r, p, end, &r->left);
      if (r->left == 0) {
        r->chunk_state = CHUNK_DATA_END;
        r->chunk_room = 2;
      }
      continue;
    }
    got = next_line(r, p, end, r->chunk_state == CHUNK_TRAILER ? &r->head_room : &r->chunk_room,
                    &line, &len);
    if (got < 0) {
      if (r->chunk_state == CHUNK_TRAILER) headers_too_large(r);
      else malformed(r, "bad_chunk", "bad chunk framing");
      return;
    }
    if (got == 0) return;
    if (r->chunk_state == CHUNK_SIZE) {
      if (!read_chunk_size(line, len, &r->left)) malformed(r, "bad_chunk", "bad chunk size");
      else if (r->left == 0) r->chunk_state = CHUNK_TRAILER;
      else r->chunk_state = CHUNK_DATA;
    } else if (r->chunk_state == CHUNK_DATA_END) {
      if (len != 0) malformed(r, "bad_chunk", "chunk data longer than its size");
      r->chunk_state = CHUNK_SIZE;
      r->chunk_room = CHUNK_LINE_MAX;
    } else if (len == 0) {
      finish(r); /* trailers (if any) are read and dropped */
    }
    strbuf_reset(&r->line);
  }
}

static void parse(response *r, const char *data, size_t len) {
  const char *p = data, *end = data + len;
  if (r->phase == PHASE_HEAD) parse_head(r, &p, end);
  if (r->phase == PHASE_BODY) {
    if (r->mode == BODY_CHUNKED) parse_chunked(r, &p, end);
    else if (r->mode == BODY_LENGTH) {
      take_body(r, &p, end, &r->left);
      if (r->left == 0) finish(r);
    } else take_body(r, &p, end, NULL);
  }
  if (r->phase == PHASE_DONE && p < end) r->extra = 1;
}

static int push_failure(lua_State *L, const response *r) {
  lua_pushnil(L);
  lua_pushstring(L, r->error);
  lua_pushstring(L, r->code);
  return 3;
}

/*
 * parser:feed(bytes) -> phase | nil, message, code
 * bytes: what the socket gave; "" means the peer closed the connection.
 * phase: "head" (status and headers not complete yet), "body" (headers
 * complete: status(), headers(), content_length() answer), "done" (the
 * whole answer is in; bytes fed after that only mark it not reusable).
 * A malformed answer or a close before the answer ended gives nil, a
 * message and a code, for this and every later feed: "closed" (the peer
 * closed early), "too_large" (status and header lines past
 * HTTP_MAX_HEADER_BYTES, 1xx heads and trailers included), "upgrade" (a
 * 101), or "bad_status_line", "bad_header", "bad_content_length",
 * "bad_chunk". Raises only on misuse or memory exhaustion.
 */
static int response_feed(lua_State *L) {
  response *r = check_response(L);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  if (r->phase == PHASE_FAILED) return push_failure(L, r);
  if (r->phase == PHASE_DONE) {
    if (len) r->extra = 1;
    lua_pushstring(L, phase_names[r->phase]);
    return 1;
  }
  if (len == 0) {
    if (r->phase == PHASE_BODY && r->mode == BODY_UNTIL_CLOSE) finish(r);
    else fail(r, "closed", r->fed == 0 ? "empty reply from server (connection closed without an answer)"
                                        : "connection closed before the response was complete");
  } else {
    parse(r, data, len);
    r->fed += len;
  }
  if (r->fields.failed || r->body.failed || r->line.failed) return luaL_error(L, "out of memory");
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
 * bytes or more left out (as the curl transports' tables, csrc/response_headers.h) */
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
 * connection may carry another request (HTTP/1.1 without "Connection:
 * close", or HTTP/1.0 with "Connection: keep-alive"; not read-until-close;
 * nothing after the answer) */
static int response_keep_alive(lua_State *L) {
  response *r = check_response(L);
  lua_pushboolean(L, r->phase == PHASE_DONE && r->keep_alive && !r->extra);
  return 1;
}

static int response_gc(lua_State *L) {
  response *r = check_response(L);
  strbuf_free(&r->line);
  strbuf_free(&r->fields);
  strbuf_free(&r->body);
  return 0;
}

static int response_tostring(lua_State *L) {
  response *r = check_response(L);
  lua_pushfstring(L, "truto.http_response (%s)", phase_names[r->phase]);
  return 1;
}

/* core.http_response([skip_body]) -> parser; skip_body: the request was
 * HEAD (no body follows any status) */
static int http_parse_new(lua_State *L) {
  int skip_body = lua_toboolean(L, 1);
  response *r = (response *)class_new(L, HTTP_RESPONSE_CLASS, sizeof *r);
  r->skip_body = skip_body;
  r->phase = PHASE_HEAD;
  r->head_room = HTTP_MAX_HEADER_BYTES;
  strbuf_init(&r->line);
  strbuf_init(&r->fields);
  strbuf_init(&r->body);
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
  static const luaL_Reg meta[] = {
    { "__gc", response_gc },
    { "__tostring", response_tostring },
    { NULL, NULL }
  };
  class_register(L, HTTP_RESPONSE_CLASS, methods, meta);
  lua_pushcfunction(L, http_parse_new);
  lua_setfield(L, -2, "http_response");
}
