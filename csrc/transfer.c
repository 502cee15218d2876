/*
 * transfer.c - the callbacks and outcome mapping of one libcurl exchange
 * (see transfer.h). Knows nothing of Truto: the request comes ready.
 *
 * Never longjmp through libcurl: the sink runs under lua_pcall, its error
 * is stashed, the transfer aborted, and the error raised after perform
 * returns. The token passes through here only as a header line and never
 * enters a message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <openssl/ssl.h>

#include "clock.h"
#include "headers.h"
#include "response_headers.h"
#include "transfer.h"

/* A byte count from Lua: 0 for NaN or negative, capped at SIZE_MAX / 2. */
static size_t byte_limit(lua_Number n) {
  double cap = (double)(SIZE_MAX / 2);
  if (!((double)n > 0.0)) return 0;
  if ((double)n >= cap) return SIZE_MAX / 2;
  return (size_t)n;
}

/* CURLE_TOO_LARGE exists from libcurl 8.6 on */
#if LIBCURL_VERSION_NUM >= 0x080600
#define TRANSFER_CURLE_TOO_LARGE CURLE_TOO_LARGE
#else
#define TRANSFER_CURLE_TOO_LARGE CURLE_OUT_OF_MEMORY
#endif

static long response_status(transfer *t) {
  long status = 0;
  curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
  return status;
}

/* Is the status line `data` (len bytes, "HTTP/x.y NNN ...") a 1xx? */
static int is_interim(const char *data, size_t len) {
  const char *space = memchr(data, ' ', len);
  return space != NULL && (size_t)(space - data) + 1 < len && space[1] == '1';
}

static size_t on_header(char *data, size_t size, size_t n, void *ud) {
  transfer *t = (transfer *)ud;
  size_t len = size * n;
  /* a new status line (after 100 Continue or a redirect) starts afresh;
   * the byte count goes on across 1xx answers, which belong to the answer
   * after them */
  if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
    strbuf_reset(&t->head);
    if (!t->interim) t->head_total = 0;
    t->interim = is_interim(data, len);
    t->got_response = t->answered = 1;
    t->head_done = 0;
  }
  if (len > TRANSFER_MAX_HEAD - t->head_total) {
    t->too_large = t->head_too_large = 1;
    return 0;
  }
  t->head_total += len;
  strbuf_add(&t->head, data, len);
  if (t->head.failed) return 0;
  if ((len == 2 && data[0] == '\r') || (len == 1 && data[0] == '\n')) {
    curl_off_t expected = -1;
    long status = response_status(t);
    if (!t->interim) t->head_done = 1;
    curl_easy_getinfo(t->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &expected);
    if (status >= 200 && expected > 0 && (curl_off_t)t->max_bytes < expected) {
      t->too_large = 1;
      t->announced = expected;
      return 0; /* drop the connection now, do not read the body */
    }
  }
  return len;
}

/* Is the transfer's connection speaking HTTP/2 (ALPN said "h2")? Asked of
 * OpenSSL, the only TLS library libcurl is built with on Debian; any other
 * backend answers "no", which only keeps the stricter rule below. */
static int connection_is_h2(transfer *t) {
  struct curl_tlssessioninfo *info = NULL;
  const unsigned char *alpn = NULL;
  unsigned int len = 0;
  if (curl_easy_getinfo(t->easy, CURLINFO_TLS_SSL_PTR, &info) != CURLE_OK || info == NULL
      || info->backend != CURLSSLBACKEND_OPENSSL || info->internals == NULL)
    return 0;
  SSL_get0_alpn_selected((SSL *)info->internals, &alpn, &len);
  return len == 2 && memcmp(alpn, "h2", 2) == 0;
}

/*
 * Called right before each request goes out on a connection (new or
 * reused): the first one, one after a followed redirect, or libcurl's own
 * silent retry. The last is refused when no answer came to the previous
 * copy (also when libcurl would not rewind first, or picks another pooled
 * connection), with one exception the protocol proves safe: on HTTP/2 the
 * only failure libcurl retries without an error message of its own is a
 * stream closed with REFUSED_STREAM — one above the last stream id of the
 * server's GOAWAY, or refused outright — which the server never processed
 * (RFC 9113 6.8, 8.7). That copy does not count as sent. Any other failure
 * on HTTP/2 (a reset, a connection closed mid-stream, a send error) leaves
 * libcurl's message in the error buffer and is refused as before.
 */
static int on_prereq(void *ud, char *conn_primary_ip, char *conn_local_ip, int conn_primary_port,
                     int conn_local_port) {
  transfer *t = (transfer *)ud;
  (void)conn_primary_ip;
  (void)conn_local_ip;
  (void)conn_primary_port;
  (void)conn_local_port;
  if (t->requests_started > 0 && !t->got_response) {
    if (!(t->on_h2 && t->errbuf[0] == '\0')) {
      t->resend_refused = 1;
      return CURL_PREREQFUNC_ABORT;
    }
    t->requests_started--; /* the refused copy was never processed */
    t->needs_reset = 1;
  }
  t->requests_started++;
  t->on_h2 = connection_is_h2(t);
  t->got_response = t->interim = t->head_done = 0;
  t->head_total = 0;
  return CURL_PREREQFUNC_OK;
}

/*
 * TLS sessions resumed on every reconnect. Two things in libcurl 7.x
 * against OpenSSL stop that:
 * - it turns TLS 1.2 session tickets off (SSL_OP_NO_TICKET), so a server
 *   that keeps no session cache of its own (nginx's default) can never
 *   resume a TLS 1.2 session: turned back on;
 * - it often frees a connection's SSL without a close_notify sent (an
 *   HTTP/2 connection the server ended with GOAWAY, always), and OpenSSL
 *   then marks the connection's session not resumable — the very session
 *   object libcurl's cache (the client's share) hands to the next
 *   connection, so every later reconnect made a full handshake. TLS 1.1
 *   and later allow resuming a session whose connection was not closed
 *   properly (RFC 5246 7.2.1): as an SSL whose handshake finished is
 *   freed, it is marked as having sent its shutdown, which is all OpenSSL
 *   checks. A fatal alert still removes the session as before.
 */
static int ssl_mark_index = -1;
static char ssl_mark; /* the value of the mark: only its address is used */

static void on_ssl_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp) {
  SSL *ssl = (SSL *)parent;
  (void)ad;
  (void)idx;
  (void)argl;
  (void)argp;
  if (ptr == &ssl_mark && ssl != NULL && SSL_is_init_finished(ssl))
    SSL_set_shutdown(ssl, SSL_get_shutdown(ssl) | SSL_SENT_SHUTDOWN);
}

static void on_ssl_info(const SSL *ssl, int where, int ret) {
  (void)ret;
  if ((where & SSL_CB_HANDSHAKE_START) && ssl_mark_index >= 0)
    SSL_set_ex_data((SSL *)ssl, ssl_mark_index, &ssl_mark);
}

static CURLcode on_ssl_ctx(CURL *e, void *ssl_ctx, void *ud) {
  SSL_CTX *ctx = (SSL_CTX *)ssl_ctx;
  (void)e;
  (void)ud;
  SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
  /* libcurl before 8.8 sets SSL_MODE_RELEASE_BUFFERS: OpenSSL then frees
   * a connection's record buffers whenever they empty and allocates them
   * again for the next record, tens of KiB per request; curl 8.8 dropped
   * it for that reason (curl commit c247827, issue 13136). A kept-alive
   * connection keeps its buffers. */
  SSL_CTX_clear_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_info_callback(ctx, on_ssl_info);
  return CURLE_OK;
}

static size_t on_body(char *data, size_t size, size_t n, void *ud) {
  transfer *t = (transfer *)ud;
  size_t len = size * n;
  if (t->sink) {
    long status = response_status(t);
    if (status >= 200 && status < 300) {
      lua_State *L = t->L;
      lua_pushvalue(L, t->sink);
      lua_pushlstring(L, data, len);
      if (lua_pcall(L, 1, 0, 0) != 0) {
        t->sink_failed = 1;
        return 0;
      }
      return len;
    }
  }
  if (len > t->max_bytes - t->body.len || t->body.len > t->max_bytes) {
    t->too_large = 1;
    return 0;
  }
  strbuf_add(&t->body, data, len);
  return t->body.failed ? 0 : len;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow) {
  transfer *t = (transfer *)ud;
  curl_off_t moved = dlnow + ulnow;
  double now = clock_now();
  (void)dltotal;
  (void)ultotal;
  if (moved != t->last_bytes) {
    t->last_bytes = moved;
    t->last_move = now;
    return 0;
  }
  if (now - t->last_move > t->stall_timeout) {
    t->stalled = 1;
    return 1;
  }
  return 0;
}

/* Classifies a failed transfer: kind, and whether the request may have
 * reached the server (then a retry without an idempotency key is unsafe). */
static void classify(transfer *t, CURLcode rc, const char **kind, const char **detail, int *sent) {
  curl_off_t started = 0;
  int connecting;
  /* Sent: a request started on a connection (on_prereq ran: from then on
   * the server may have it), or an answer began. Not from the connect
   * time: a reused keep-alive connection has none, and treating its
   * failures as "never sent" would retry a create without a key. */
  *sent = t->requests_started > 0 || t->got_response;
  /* Still connecting (TCP or TLS): the transfer never reached its request
   * phase, for which libcurl stamps the pre-transfer time. */
  curl_easy_getinfo(t->easy, CURLINFO_PRETRANSFER_TIME_T, &started);
  connecting = !*sent && started == 0;
  *detail = NULL;
  if (t->url_refused) { *kind = "invalid_argument"; *sent = 0; return; }
  if (t->too_large || t->line_too_large) *kind = "too_large";
  else if (t->stalled) { *kind = "timeout"; *detail = connecting ? "connect_timeout" : "stall_timeout"; }
  else if (t->resend_refused) { *kind = "network"; *sent = 1; }
  else switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
      *kind = "timeout";
      *detail = connecting ? "connect_timeout" : "timeout";
      break;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
      *kind = "connect"; *sent = 0; break;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_USE_SSL_FAILED:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
      *kind = "tls"; *sent = 0; break;
    case CURLE_URL_MALFORMAT:
      *kind = "connect"; *sent = 0; break;
    case CURLE_UNSUPPORTED_PROTOCOL:
      /* a scheme curl cannot speak (nothing sent), or an answer that is
       * not HTTP at all, such as HTTP/0.9 garbage (sent) */
      *kind = *sent ? "network" : "connect";
      break;
    default:
      *kind = "network";
      break;
  }
  /* An answer came (a redirect hop's, say): the request was delivered,
   * whatever failed after it — connecting to the next Location included. */
  if (t->answered) *sent = 1;
}

/* The per-handle options: set once, and again after a curl_easy_reset. */
static void configure(transfer *t) {
  CURL *e = t->easy;
  curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)t);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
  curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_prereq);
  curl_easy_setopt(e, CURLOPT_PREREQDATA, t);
  curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(e, CURLOPT_XFERINFODATA, t);
  curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
  /* libcurl 7.x copies an HTTPS/1.1 request into an upload buffer it
   * allocates for each transfer and frees after it, 64 KiB by default;
   * the smallest it allows is one TLS record's worth (16 KiB): the same
   * writes, a quarter of the memory, and no fresh heap pages per request */
  curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 16384L);

  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, t->http_version);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
  /* on a redirect to another origin, curl drops Authorization unless
   * CURLOPT_UNRESTRICTED_AUTH is set; it is never set here */
  curl_easy_setopt(e, CURLOPT_PROXY, t->proxy ? t->proxy : "");
  if (t->ca_file) curl_easy_setopt(e, CURLOPT_CAINFO, t->ca_file);
  if (t->insecure) {
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (t->share) curl_easy_setopt(e, CURLOPT_SHARE, t->share);
}

static char *copy_string(const char *s) {
  char *copy;
  if (s == NULL) return NULL;
  copy = (char *)malloc(strlen(s) + 1);
  if (copy) strcpy(copy, s);
  return copy;
}

int transfer_init(transfer *t, lua_State *L, int config, CURLSH *share) {
  const char *ca_file = NULL, *proxy = NULL, *version = NULL;
  memset(t, 0, sizeof *t);
  strbuf_init(&t->head);
  strbuf_init(&t->body);
  strbuf_init(&t->upload);
  strbuf_init(&t->origin);
  strbuf_init(&t->header_text);
  if (config && lua_istable(L, config)) {
    lua_getfield(L, config, "ca_file");
    ca_file = lua_tostring(L, -1);
    lua_getfield(L, config, "proxy");
    proxy = lua_tostring(L, -1);
    lua_getfield(L, config, "insecure");
    t->insecure = lua_toboolean(L, -1);
    lua_getfield(L, config, "http_version");
    version = lua_tostring(L, -1);
    lua_pop(L, 4); /* the strings stay alive in the config table */
  }
  /* "1.1": HTTP/1.1 only; otherwise HTTP/2 where TLS offers it */
  t->http_version = version && strcmp(version, "1.1") == 0 ? CURL_HTTP_VERSION_1_1 : CURL_HTTP_VERSION_2TLS;
  t->ca_file = copy_string(ca_file);
  t->proxy = copy_string(proxy);
  t->share = share;
  t->easy = curl_easy_init();
  if (t->easy == NULL || (ca_file && !t->ca_file) || (proxy && !t->proxy)) return -1;
  t->direct = proxy == NULL || proxy[0] == '\0';
  configure(t);
  return 0;
}

void transfer_cleanup(transfer *t) {
  if (t->easy) curl_easy_cleanup(t->easy);
  t->easy = NULL;
  free(t->ca_file);
  free(t->proxy);
  t->ca_file = t->proxy = NULL;
  free(t->headers);
  t->headers = NULL;
  t->header_cap = 0;
  strbuf_free(&t->header_text);
  strbuf_free(&t->head);
  strbuf_free(&t->body);
  strbuf_free(&t->upload);
  strbuf_free(&t->origin);
}

/* The path of an http(s) URL with an authority, or NULL: where the
 * request target (origin-form: path and query) starts. NULL when there is
 * no path, or a query or fragment comes before it. */
static const char *request_target(const char *url) {
  const char *p = strstr(url, "://");
  if (p == NULL) return NULL;
  p += 3;
  p += strcspn(p, "/?#");
  /* a target longer than any the client builds takes libcurl's path,
   * which refuses URLs over its limit */
  return *p == '/' && strlen(p) <= 65536 ? p : NULL;
}

/* Raises "bad argument #arg (request.<name>: expected <what>, got <type>)". */
static void bad_field(lua_State *L, int req, const char *name, const char *what) {
  const char *got = luaL_typename(L, -1);
  luaL_argerror(L, req, lua_pushfstring(L, "request.%s: expected %s, got %s", name, what, got));
}

/* req[name] as a number, `fallback` when nil (popped: numbers need no anchor). */
static lua_Number number_field(lua_State *L, int req, const char *name, lua_Number fallback) {
  lua_Number n = fallback;
  lua_getfield(L, req, name);
  if (lua_type(L, -1) == LUA_TNUMBER) n = lua_tonumber(L, -1);
  else if (!lua_isnil(L, -1)) bad_field(L, req, name, "a number");
  lua_pop(L, 1);
  return n;
}

/* req[name] as a string (NULL when nil and optional), left on the stack
 * so that it lives as long as the caller needs it. */
static const char *string_field(lua_State *L, int req, const char *name, int optional, size_t *len) {
  lua_getfield(L, req, name);
  if (lua_type(L, -1) == LUA_TSTRING) return lua_tolstring(L, -1, len);
  if (!(optional && lua_isnil(L, -1))) bad_field(L, req, name, "a string");
  *len = 0;
  return NULL;
}

void transfer_prepare(lua_State *L, transfer *t, int req, int with_sink) {
  int top = lua_gettop(L), headers;
  size_t body_len = 0, url_len = 0, method_len = 0, i, nheaders;
  const char *method = string_field(L, req, "method", 0, &method_len);
  const char *url = string_field(L, req, "url", 0, &url_len);
  const char *body = string_field(L, req, "body", 1, &body_len);
  lua_Number timeout = number_field(L, req, "timeout", 30);
  lua_Number connect_timeout = number_field(L, req, "connect_timeout", 10);
  lua_Number max_bytes = number_field(L, req, "max_response_bytes", 64.0 * 1024 * 1024);
  lua_Number stall = number_field(L, req, "stall_timeout", 0);
  int follow;
  struct curl_slist *list = NULL;
  const char *target;
  CURL *e = t->easy;
  if (t->needs_reset) {
    curl_easy_reset(e);
    configure(t);
    t->needs_reset = 0;
  }
  lua_getfield(L, req, "follow_redirects");
  follow = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (with_sink) {
    lua_getfield(L, req, "sink");
    if (!lua_isnil(L, -1) && !lua_isfunction(L, -1)) bad_field(L, req, "sink", "a function");
    lua_pop(L, 1);
  }
  lua_getfield(L, req, "headers");
  if (!lua_istable(L, -1)) bad_field(L, req, "headers", "an array of header lines");
  headers = lua_gettop(L);

  /* the lines, each NUL-terminated, into one buffer; then the list's
   * nodes over it (the buffer may move while it grows) */
  nheaders = (size_t)lua_rawlen(L, headers);
  strbuf_reset(&t->header_text);
  for (i = 1; i <= nheaders; i++) {
    size_t len = 0;
    const char *line;
    lua_rawgeti(L, headers, (int)i);
    line = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
    if (line == NULL || memchr(line, '\0', len) != NULL)
      luaL_argerror(L, req, lua_pushfstring(L, "request.headers[%d]: expected a header line", (int)i));
    strbuf_add(&t->header_text, line, len + 1);
    lua_pop(L, 1);
  }
  /* no "Expect: 100-continue" round trip for large bodies */
  strbuf_add(&t->header_text, "Expect:", sizeof "Expect:");
  if (t->header_text.failed) luaL_error(L, "out of memory");
  if (nheaders + 1 > t->header_cap) {
    struct curl_slist *grown = (struct curl_slist *)realloc(t->headers, (nheaders + 1) * sizeof *grown);
    if (grown == NULL) luaL_error(L, "out of memory");
    t->headers = grown;
    t->header_cap = nheaders + 1;
  }
  list = t->headers;
  {
    char *line = t->header_text.data;
    for (i = 0; i <= nheaders; i++) {
      char *next = line + strlen(line) + 1;
      if (i < nheaders) headers_keep_empty_value(line); /* not the "Expect:" that removes one */
      list[i].data = line;
      list[i].next = i < nheaders ? &list[i + 1] : NULL;
      line = next;
    }
  }

  strbuf_reset(&t->head);
  strbuf_reset(&t->body);
  strbuf_reset(&t->upload);
  /* a copy: with a multi handle the Lua string need not outlive this call */
  if (body_len) strbuf_add(&t->upload, body, body_len);
  if (t->upload.failed) luaL_error(L, "out of memory");
  t->got_response = t->resend_refused = t->head_too_large = t->url_refused = t->on_h2 = 0;
  t->answered = t->interim = t->head_done = t->line_too_large = 0;
  t->head_total = 0;
  t->requests_started = 0;
  t->announced = -1;
  t->max_bytes = byte_limit(max_bytes);
  t->too_large = 0;
  t->sink = 0;
  t->sink_failed = 0;
  t->stall_timeout = stall;
  t->stalled = 0;
  t->last_bytes = 0;
  t->last_move = stall > 0 ? clock_now() : 0; /* read only with a stall_timeout */
  t->errbuf[0] = '\0';

  /* Without a proxy or redirects to follow, the URL given to libcurl is
   * only the origin and the path and query go out as they are
   * (CURLOPT_REQUEST_TARGET): the same request line and Host, while
   * libcurl 7.x re-parses and re-prints the whole URL a byte at a time on
   * every request (a third of its CPU per request here). The target comes
   * escaped from the request builder. */
  target = follow || !t->direct ? NULL : request_target(url);
  if (target != NULL) {
    strbuf_reset(&t->origin);
    strbuf_add(&t->origin, url, (size_t)(target - url));
    strbuf_add(&t->origin, "", 1); /* NUL-terminated for libcurl */
    if (t->origin.failed) luaL_error(L, "out of memory");
    url = t->origin.data;
  }
  curl_easy_setopt(e, CURLOPT_REQUEST_TARGET, target);
  if (curl_easy_setopt(e, CURLOPT_URL, url) != CURLE_OK) {
    /* libcurl keeps the previous URL when it refuses one: never send there */
    curl_easy_setopt(e, CURLOPT_URL, NULL);
    t->url_refused = 1;
  }
  if (body == NULL) {
    /* no body at all: no Content-Length, and no Content-Type of curl's
     * own; a method other than GET (DELETE) is named over a GET */
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, strcmp(method, "GET") == 0 ? NULL : method);
  } else {
    /* POSTFIELDS on the handle's own copy: libcurl sends headers and body
     * in one write; any method but POST (PATCH, PUT) is named over it.
     * Its silent re-send on a fresh connection is refused in on_prereq,
     * with or without a body. */
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->upload.data ? t->upload.data : "");
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, strcmp(method, "POST") == 0 ? NULL : method);
  }
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, clock_milliseconds(timeout));
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, clock_milliseconds(connect_timeout));
  curl_easy_setopt(e, CURLOPT_NOPROGRESS, stall > 0 ? 0L : 1L);
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, follow ? 1L : 0L);
  lua_settop(L, top);
  if (with_sink) {
    lua_getfield(L, req, "sink");
    if (lua_isfunction(L, -1)) t->sink = lua_gettop(L);
  }
}

/* Did the whole body arrive (as many bytes as a Content-Length said)? */
static int answer_complete(transfer *t) {
  curl_off_t expected = -1, got = 0;
  curl_easy_getinfo(t->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &expected);
  curl_easy_getinfo(t->easy, CURLINFO_SIZE_DOWNLOAD_T, &got);
  return expected < 0 || got == expected;
}

/* Between requests a handle keeps small buffers for reuse, not big ones. */
static void release_buffers(transfer *t) {
  strbuf_reset(&t->body);
  strbuf_reset(&t->upload);
  if (t->body.cap > 1024 * 1024) strbuf_free(&t->body);
  if (t->upload.cap > 1024 * 1024) strbuf_free(&t->upload);
}

int transfer_finish(lua_State *L, transfer *t, CURLcode rc) {
  curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, NULL);
  t->L = NULL;
  if (t->sink_failed) {
    strbuf_reset(&t->body);
    return lua_error(L); /* the sink's own error, stashed on the stack */
  }
  if (rc == CURLE_TOO_MANY_REDIRECTS && t->head_done && !t->too_large) {
    /* a redirect loop is an answer, not a failure: the last 3xx (the
     * client makes it an http error, never retried) */
    lua_pushinteger(L, (lua_Integer)response_status(t));
    response_headers_push(L, t->head.data ? t->head.data : "", t->head.len);
    lua_pushliteral(L, "");
    release_buffers(t);
    return 3;
  }
  /* libcurl 7.x ends an HTTP/2 transfer with CURLE_HTTP2_STREAM, and no
   * message of its own ("stream N closed" is only an info line), when the
   * server answered in full and closed the stream before taking the whole
   * request body (RFC 9113 8.1 allows it; nginx's `return` does it) while
   * libcurl still had body to send. The answer is whole: it is the answer,
   * not a failure to retry (retrying it sent a create twice). */
  if (rc == CURLE_HTTP2_STREAM && t->errbuf[0] == '\0' && t->head_done && !t->too_large
      && response_status(t) >= 200 && answer_complete(t))
    rc = CURLE_OK;
  /* one header line over libcurl's own 100 KiB: it reports that as out
   * of memory (8.6 and later: too large) before the headers end */
  if ((rc == CURLE_OUT_OF_MEMORY || rc == TRANSFER_CURLE_TOO_LARGE) && t->requests_started > 0
      && !t->head_done)
    t->line_too_large = 1;
  if (rc != CURLE_OK) {
    const char *kind, *detail;
    int sent;
    char message[CURL_ERROR_SIZE + 200];
    long redirects = 0;
    classify(t, rc, &kind, &detail, &sent);
    curl_easy_getinfo(t->easy, CURLINFO_REDIRECT_COUNT, &redirects);
    if (t->url_refused)
      snprintf(message, sizeof message, "the URL is longer than libcurl accepts");
    else if (t->head_too_large)
      snprintf(message, sizeof message,
               "the answer's headers (with any 1xx answers before it) pass %d bytes; "
               "connection dropped", TRANSFER_MAX_HEAD);
    else if (t->line_too_large)
      snprintf(message, sizeof message,
               "an answer's header line passes libcurl's limit of 100 KiB per line (%s); "
               "connection dropped", t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc));
    else if (t->too_large && t->announced > 0)
      snprintf(message, sizeof message,
               "the answer announces %lld bytes, over max_response_bytes = %lu; "
               "connection dropped without reading it",
               (long long)t->announced, (unsigned long)t->max_bytes);
    else if (t->too_large)
      snprintf(message, sizeof message,
               "the answer passed max_response_bytes = %lu; connection dropped without reading the rest",
               (unsigned long)t->max_bytes);
    else if (t->stalled)
      snprintf(message, sizeof message, "no byte moved for %g seconds", (double)t->stall_timeout);
    else if (t->resend_refused)
      snprintf(message, sizeof message,
               "the connection closed with no answer after the request was sent "
               "(the server may have received it)");
    else if (t->answered && redirects > 0)
      snprintf(message, sizeof message, "%s (following a redirect: the request was delivered)",
               t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc));
    else
      snprintf(message, sizeof message, "%s", t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc));
    lua_pushnil(L);
    lua_pushstring(L, kind);
    lua_pushstring(L, message);
    lua_pushboolean(L, sent);
    if (detail) lua_pushstring(L, detail); else lua_pushnil(L);
    release_buffers(t);
    return 5;
  }
  if (t->head.failed || t->body.failed) return luaL_error(L, "out of memory");
  lua_pushinteger(L, (lua_Integer)response_status(t));
  response_headers_push(L, t->head.data ? t->head.data : "", t->head.len);
  lua_pushlstring(L, t->body.data ? t->body.data : "", t->body.len);
  release_buffers(t);
  return 3;
}

void transfer_global_init(lua_State *L) {
  static int curl_ready = 0; /* set once per process, never changed after */
  if (!curl_ready) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) luaL_error(L, "curl_global_init failed");
    ssl_mark_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, on_ssl_free);
    curl_ready = 1;
  }
}

