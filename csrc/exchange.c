/*
 * exchange.c - the module's own HTTP/1.1 exchange on a connection libcurl
 * opened (see exchange.h). The request is written byte for byte as
 * libcurl 7.88 writes it (request line, Host, its default Accept, the
 * caller's lines in order, Content-Length and its default Content-Type
 * for a body, no Expect); anything whose bytes would differ is refused by
 * exchange_write and goes through libcurl's own transfer.
 *
 * What a failure means mirrors transfer.c: `sent` once a byte of the
 * request was written; a connection found dead before a byte was written
 * is replaced (once), never a request re-sent after. Must never call into
 * Lua except in exchange_finish, and never block outside exchange_run.
 */
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "answer.h"
#include "exchange.h"
#include "transfer.h"

#define RECV_CHUNK 16384

/* A kept connection that closed (or reset) before any byte of an answer:
 * the words of transfer.c's refused re-send, for the same case. */
static const char UNANSWERED[] = "the connection closed with no answer after the request was sent "
                                 "(the server may have received it)";

void exchange_init(exchange *x) {
  memset(x, 0, sizeof *x);
  strbuf_init(&x->origin);
  strbuf_init(&x->want);
  strbuf_init(&x->out);
  http_response_init(&x->resp, 0, 1);
  /* libcurl's own limit per header line (CURL_MAX_HTTP_HEADER), kept so
   * that both ways of reading refuse the same answers */
  x->resp.max_line = 100 * 1024 - 2;
  x->fd = CURL_SOCKET_BAD;
}

/* Drops the connection. On a multi the handle stays for the next one;
 * alone it goes too (its own connection cache holds the connection). */
void exchange_close(exchange *x) {
  if (x->conn != NULL) {
    if (x->multi != NULL) {
      /* removing a CONNECT_ONLY handle from its multi closes its connection */
      if (x->added) curl_multi_remove_handle(x->multi, x->conn);
      x->added = 0;
    } else {
      curl_easy_cleanup(x->conn); /* its own connection cache goes with it */
      x->conn = NULL;
    }
  }
  x->open = 0;
  x->uses = 0;
  x->fd = CURL_SOCKET_BAD;
}

void exchange_cleanup(exchange *x) {
  exchange_close(x);
  if (x->conn != NULL) curl_easy_cleanup(x->conn); /* the multi's handle: out of it now */
  x->conn = NULL;
  strbuf_free(&x->origin);
  strbuf_free(&x->want);
  strbuf_free(&x->out);
  http_response_free(&x->resp);
}

/* ---- the request ---- */

static int name_is(const char *line, size_t nlen, const char *name) {
  return strlen(name) == nlen && strncasecmp(line, name, nlen) == 0;
}

/* A header line libcurl sends as it is: a token name, ':', a value that is
 * not blank, no CR or LF; and not one libcurl treats specially. 1 when it
 * is; *accept / *ctype set when it names Accept / Content-Type. */
static int plain_line(const char *line, int *accept, int *ctype) {
  size_t nlen = 0, i;
  const char *v;
  while (http_is_token_char((unsigned char)line[nlen])) nlen++;
  if (nlen == 0 || line[nlen] != ':') return 0;
  for (i = nlen; line[i]; i++)
    if (line[i] == '\r' || line[i] == '\n') return 0;
  v = line + nlen + 1;
  while (*v == ' ' || *v == '\t') v++;
  if (*v == '\0') return 0; /* libcurl drops blank ones (or sends "Name;" ones) */
  if (name_is(line, nlen, "host") || name_is(line, nlen, "content-length")
      || name_is(line, nlen, "transfer-encoding") || name_is(line, nlen, "connection")
      || name_is(line, nlen, "expect") || name_is(line, nlen, "cookie"))
    return 0;
  if (name_is(line, nlen, "accept")) *accept = 1;
  if (name_is(line, nlen, "content-type")) *ctype = 1;
  return 1;
}

/* The Host header's value as libcurl 7.88 prints it, from the authority
 * `a` (n bytes): the host as given, the port unless it is 80. 0 when
 * libcurl could print it otherwise (user info, upper case, a trailing
 * dot, a zone id, a port that is not plain). */
static int host_value(strbuf *b, const char *a, size_t n) {
  size_t hlen = 0, i;
  long port = 80;
  if (n == 0 || memchr(a, '@', n) != NULL) return 0;
  if (a[0] == '[') {
    const char *close = (const char *)memchr(a, ']', n);
    if (close == NULL) return 0;
    hlen = (size_t)(close - a) + 1;
    for (i = 1; i + 1 < hlen; i++)
      if (!((a[i] >= '0' && a[i] <= '9') || (a[i] >= 'a' && a[i] <= 'f') || a[i] == ':' || a[i] == '.'))
        return 0;
  } else {
    while (hlen < n && a[hlen] != ':') {
      char c = a[hlen];
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-')) return 0;
      hlen++;
    }
    if (hlen == 0 || a[hlen - 1] == '.') return 0;
  }
  if (hlen < n) {
    size_t digits = n - hlen - 1;
    if (a[hlen] != ':' || digits > 5) return 0;
    if (digits > 0) {
      if (a[hlen + 1] == '0') return 0;
      port = 0;
      for (i = hlen + 1; i < n; i++) {
        if (a[i] < '0' || a[i] > '9') return 0;
        port = port * 10 + (a[i] - '0');
      }
      if (port > 65535) return 0;
    }
  }
  strbuf_add(b, "Host: ", 6);
  strbuf_add(b, a, hlen);
  if (port != 80) {
    char p[8];
    int k = snprintf(p, sizeof p, ":%ld", port);
    strbuf_add(b, p, (size_t)k);
  }
  strbuf_add(b, "\r\n", 2);
  return 1;
}

int exchange_write(exchange *x, const char *method, const char *url, const char *target,
                   const char *lines, size_t nlines, const char *body, size_t body_len) {
  const char *authority, *line, *m;
  int accept = 0, ctype = 0;
  size_t i;
  strbuf *b = &x->out;
  if (target == NULL || strncmp(url, "http://", 7) != 0 || strcmp(method, "HEAD") == 0) return 0;
  for (m = method; *m; m++)
    if (!http_is_token_char((unsigned char)*m)) return 0;
  if (m == method) return 0;
  for (i = 0, line = lines; i < nlines; i++, line += strlen(line) + 1)
    if (!plain_line(line, &accept, &ctype)) return 0;
  authority = url + 7;
  strbuf_reset(b);
  strbuf_add(b, method, strlen(method));
  strbuf_addc(b, ' ');
  strbuf_add(b, target, strlen(target));
  strbuf_add(b, " HTTP/1.1\r\n", 11);
  if (!host_value(b, authority, (size_t)(target - authority))) return 0;
  if (!accept) strbuf_add(b, "Accept: */*\r\n", 13);
  for (i = 0, line = lines; i < nlines; i++, line += strlen(line) + 1) {
    strbuf_add(b, line, strlen(line));
    strbuf_add(b, "\r\n", 2);
  }
  if (body != NULL) {
    char len[48];
    int k = snprintf(len, sizeof len, "Content-Length: %lu\r\n", (unsigned long)body_len);
    strbuf_add(b, len, (size_t)k);
    if (!ctype) strbuf_add(b, "Content-Type: application/x-www-form-urlencoded\r\n", 49);
  }
  strbuf_add(b, "\r\n", 2);
  if (body != NULL) strbuf_add(b, body, body_len);
  strbuf_reset(&x->want);
  strbuf_add(&x->want, url, (size_t)(target - url));
  strbuf_addc(&x->want, '\0');
  if (b->failed || x->want.failed) return -1;
  return 1;
}

/* ---- the connection ---- */

/* The connection's socket as libcurl knows it, or CURL_SOCKET_BAD. */
static curl_socket_t active_socket(exchange *x) {
  curl_socket_t fd = CURL_SOCKET_BAD;
  if (curl_easy_getinfo(x->conn, CURLINFO_ACTIVESOCKET, &fd) != CURLE_OK) return CURL_SOCKET_BAD;
  return fd;
}

/* A kept connection is fit for the next request when nothing can be read
 * on it: readable means closed by the peer (or stray bytes). libcurl never
 * closes it under us: the handle holds it from its first request on (the
 * first is written as soon as it connects), so x->fd stays its socket. */
static int usable(exchange *x) {
  struct pollfd p;
  p.fd = x->fd;
  p.events = POLLIN;
  p.revents = 0;
  return poll(&p, 1, 0) == 0;
}

/* The handle, set for a connection to x->want. 0, or -1 when libcurl
 * cannot make one. Blocking, the stall limit bounds the connect too (the
 * poll loop's tick does that otherwise). */
static int ready_handle(exchange *x, int blocking) {
  CURL *e = x->conn;
  double left = x->started + x->timeout - transfer_now();
  double connect = x->connect_timeout;
  if (blocking && x->stall_timeout > 0 && x->stall_timeout < connect) connect = x->stall_timeout;
  if (e == NULL) {
    e = curl_easy_init();
    if (e == NULL) return -1;
    x->conn = e;
    curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http");
    curl_easy_setopt(e, CURLOPT_PROXY, ""); /* never one from the environment */
    curl_easy_setopt(e, CURLOPT_PRIVATE, x->owner);
  }
  x->errbuf[0] = '\0';
  curl_easy_setopt(e, CURLOPT_URL, x->want.data);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, transfer_milliseconds(connect));
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, transfer_milliseconds(left));
  return 0;
}

static void fail(exchange *x, const char *kind, const char *detail, const char *message) {
  x->failed = 1;
  x->kind = kind;
  x->detail = detail;
  x->sent = x->out_off > 0 || x->resp.fed > 0 || x->uses < 0;
  snprintf(x->message, sizeof x->message, "%s", message);
  x->state = X_DONE;
  exchange_close(x);
}

void exchange_connected(exchange *x, CURLcode rc) {
  if (x->state != X_CONNECTING) return;
  if (rc == CURLE_OK) {
    x->open = 1;
    x->uses = 0;
    x->fd = active_socket(x);
    if (x->fd == CURL_SOCKET_BAD) {
      fail(x, "connect", NULL, "libcurl gave no socket for the connection");
      return;
    }
    strbuf_reset(&x->origin);
    strbuf_add(&x->origin, x->want.data, x->want.len);
    x->state = X_SENDING;
    x->last_move = transfer_now();
    return;
  }
  {
    const char *msg = x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc);
    if (rc == CURLE_OPERATION_TIMEDOUT) fail(x, "timeout", "connect_timeout", msg);
    else if (rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_CONNECT
             || rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL)
      fail(x, "connect", NULL, msg);
    else fail(x, "network", NULL, msg);
  }
}

int exchange_needs_connect(const exchange *x) {
  return x->state == X_CONNECTING && !x->added;
}

/* The handle made ready for one more connection for this request (at most
 * a second, after a kept one was found dead); 0, or -1 having failed. */
static int next_connection(exchange *x, int blocking) {
  if (x->connects++ > 1) {
    fail(x, "network", NULL, "the connection closed before the request could be sent");
    return -1;
  }
  if (ready_handle(x, blocking) < 0) {
    fail(x, "network", NULL, "curl_easy_init failed");
    return -1;
  }
  return 0;
}

void exchange_connect(exchange *x) {
  if (next_connection(x, 0) < 0) return;
  if (curl_multi_add_handle(x->multi, x->conn) != CURLM_OK) {
    fail(x, "network", NULL, "curl_multi_add_handle failed");
    return;
  }
  x->added = 1;
}

/* The connect of the single-request transport: blocks. */
static void connect_blocking(exchange *x) {
  if (next_connection(x, 1) < 0) return;
  exchange_connected(x, curl_easy_perform(x->conn));
}

/* ---- the request's steps ---- */

void exchange_begin(exchange *x, double timeout, double connect_timeout, double stall,
                    size_t max_bytes) {
  double now = transfer_now();
  x->started = x->last_move = now;
  x->timeout = timeout;
  x->connect_timeout = connect_timeout;
  x->stall_timeout = stall;
  x->max_bytes = max_bytes;
  x->out_off = 0;
  x->failed = x->sent = x->oom = 0;
  x->connects = 0;
  x->kind = x->detail = NULL;
  x->message[0] = '\0';
  http_response_reset(&x->resp, 0);
  if (x->open && (x->origin.len != x->want.len || memcmp(x->origin.data, x->want.data, x->want.len) != 0
                  || !usable(x)))
    exchange_close(x);
  x->state = x->open ? X_SENDING : X_CONNECTING;
}

static void too_large(exchange *x, const char *message) {
  fail(x, "too_large", NULL, message);
}

/* What the bytes read so far say: done, failed, or more to read. */
static void judge(exchange *x, int phase) {
  http_response *r = &x->resp;
  char message[300];
  if (http_response_oom(r)) {
    fail(x, "network", NULL, "out of memory reading the answer");
    x->oom = 1; /* exchange_finish raises */
    return;
  }
  if (phase == HTTP_PHASE_FAILED) {
    if (strcmp(r->code, "too_large") == 0) {
      snprintf(message, sizeof message,
               "the answer's headers (with any 1xx answers before it) pass %d bytes; "
               "connection dropped", HTTP_MAX_HEADER_BYTES);
      too_large(x, message);
    } else if (strcmp(r->code, "line_too_large") == 0) {
      too_large(x, "an answer's header line passes libcurl's limit of 100 KiB per line; "
                   "connection dropped");
    } else if (strcmp(r->code, "closed") == 0 && r->fed == 0) {
      fail(x, "network", NULL, x->uses > 0 ? UNANSWERED : "Empty reply from server");
    } else {
      fail(x, "network", NULL, r->error);
    }
    return;
  }
  if (phase != HTTP_PHASE_HEAD && r->status >= 200 && r->has_length
      && r->content_length > (uint64_t)x->max_bytes && r->content_length > 0) {
    snprintf(message, sizeof message,
             "the answer announces %llu bytes, over max_response_bytes = %lu; "
             "connection dropped without reading it",
             (unsigned long long)r->content_length, (unsigned long)x->max_bytes);
    too_large(x, message);
    return;
  }
  if (r->body.len > x->max_bytes) {
    snprintf(message, sizeof message,
             "the answer passed max_response_bytes = %lu; connection dropped without reading the rest",
             (unsigned long)x->max_bytes);
    too_large(x, message);
    return;
  }
  if (phase == HTTP_PHASE_DONE) x->state = X_DONE;
}

static void send_some(exchange *x) {
  while (x->state == X_SENDING) {
    size_t n = 0;
    CURLcode rc = curl_easy_send(x->conn, x->out.data + x->out_off, x->out.len - x->out_off, &n);
    if (rc == CURLE_AGAIN) return;
    if (rc != CURLE_OK) {
      if (x->out_off == 0 && x->uses > 0) {
        /* the kept connection died before a byte of this request went
         * out: a fresh one, as libcurl does */
        exchange_close(x);
        x->state = X_CONNECTING;
        return;
      }
      fail(x, "network", NULL, x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc));
      return;
    }
    x->out_off += n;
    x->last_move = transfer_now();
    if (x->out_off >= x->out.len) x->state = X_RECEIVING;
  }
}

static void recv_some(exchange *x) {
  char buf[RECV_CHUNK];
  while (x->state == X_RECEIVING) {
    size_t n = 0;
    CURLcode rc = curl_easy_recv(x->conn, buf, sizeof buf, &n);
    if (rc == CURLE_AGAIN) return;
    if (rc != CURLE_OK) {
      /* a kept connection reset before any answer: said as a close is */
      fail(x, "network", NULL, x->resp.fed == 0 && x->uses > 0
           ? UNANSWERED : x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc));
      return;
    }
    x->last_move = transfer_now();
    judge(x, http_response_feed(&x->resp, buf, n));
    if (n == 0 && x->state != X_DONE) {
      /* closed: the parser said failed or done above; never loop on EOF */
      fail(x, "network", NULL, "connection closed before the response was complete");
    }
    if (n < sizeof buf) return; /* the rest, if any, after the next poll */
  }
}

short exchange_events(const exchange *x) {
  if (x->state == X_SENDING) return POLLOUT | POLLIN;
  if (x->state == X_RECEIVING) return POLLIN;
  return 0;
}

void exchange_io(exchange *x, short revents) {
  if (revents & POLLNVAL) {
    /* never expected: the socket is not open any more; never spin on it */
    fail(x, "network", NULL, "the connection's socket was closed under the request");
    return;
  }
  if (x->state == X_SENDING) {
    if (revents & POLLIN) {
      /* an answer before the whole request went out: read it; the
       * connection cannot carry another request after that */
      x->state = X_RECEIVING;
      x->uses = -1;
    } else if (revents & (POLLOUT | POLLERR | POLLHUP)) {
      send_some(x);
    }
  }
  if (x->state == X_RECEIVING && (revents & (POLLIN | POLLERR | POLLHUP))) recv_some(x);
}

double exchange_due(const exchange *x) {
  double due = x->started + x->timeout;
  if (x->stall_timeout > 0 && x->last_move + x->stall_timeout < due) due = x->last_move + x->stall_timeout;
  return due;
}

void exchange_tick(exchange *x, double now) {
  char message[200];
  int connecting = x->state == X_CONNECTING;
  if (x->state == X_DONE || x->state == X_IDLE) return;
  if (now >= x->started + x->timeout) {
    snprintf(message, sizeof message, "Operation timed out after %ld milliseconds with %lu bytes received",
             (long)((now - x->started) * 1000.0), (unsigned long)x->resp.fed);
    fail(x, "timeout", connecting ? "connect_timeout" : "timeout", message);
  } else if (x->stall_timeout > 0 && now - x->last_move > x->stall_timeout) {
    snprintf(message, sizeof message, "no byte moved for %g seconds", x->stall_timeout);
    fail(x, "timeout", connecting ? "connect_timeout" : "stall_timeout", message);
  }
}

void exchange_run(exchange *x) {
  int tried = 0; /* sending was tried since the last poll */
  while (x->state != X_DONE) {
    double now, due;
    struct pollfd p;
    if (x->state == X_CONNECTING) {
      connect_blocking(x);
      tried = 0;
      continue;
    }
    if (x->state == X_SENDING && !tried) {
      send_some(x); /* most requests go out without waiting */
      tried = 1;
      continue;
    }
    now = transfer_now();
    exchange_tick(x, now);
    if (x->state == X_DONE) break;
    due = exchange_due(x);
    p.fd = x->fd;
    p.events = exchange_events(x);
    p.revents = 0;
    /* a signal (EINTR) only ends this wait: the deadlines still hold */
    if (poll(&p, 1, due <= now ? 0 : (int)ceil((due - now) * 1000.0)) > 0) exchange_io(x, p.revents);
    tried = 0;
  }
}

int exchange_finish(lua_State *L, exchange *x) {
  http_response *r = &x->resp;
  x->state = X_IDLE;
  /* between requests, small buffers are kept for reuse, not big ones */
  if (x->out.cap > 1024 * 1024) strbuf_free(&x->out);
  if (x->failed) {
    if (x->oom) return luaL_error(L, "out of memory");
    lua_pushnil(L);
    lua_pushstring(L, x->kind);
    lua_pushstring(L, x->message);
    lua_pushboolean(L, x->sent);
    if (x->detail) lua_pushstring(L, x->detail); else lua_pushnil(L);
    return 5;
  }
  lua_pushinteger(L, (lua_Integer)r->status);
  answer_push_headers(L, r->head.data ? r->head.data : "", r->head.len);
  lua_pushlstring(L, r->body.data ? r->body.data : "", r->body.len);
  if (x->uses >= 0 && http_response_reusable(r)) x->uses++;
  else exchange_close(x);
  return 3;
}
