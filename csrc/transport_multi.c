/*
 * transport_multi.c - many requests at once on one libcurl multi handle
 * (create_many). Lua drives: add() starts a request, perform(wait, out)
 * moves every transfer on and hands back the ones that finished; retries, order
 * and backoff are decided in lua/truto/batch.lua. Easy handles are pooled
 * and keep their connections (shared with the client's single handle
 * through the share). No sinks here, so no Lua runs inside libcurl.
 *
 * libcurl is driven through its socket interface: it says which sockets
 * to watch and when its next timer is due, this file polls them and tells
 * it which became ready, so a turn only touches the transfers that can
 * move (curl_multi_perform checks every transfer's socket on every turn:
 * a poll per transfer per turn). stall_timeout is checked here, since an
 * idle transfer is not visited at all.
 *
 * A request the module writes itself (exchange.h) runs on its slot's own
 * CONNECT_ONLY connection: libcurl opens it in this multi (its CURLMSG_DONE
 * says the connection is ready) and this file polls its socket in the same
 * poll as libcurl's, stepping the exchange when it is ready.
 */
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "transfer.h"
#include "transport_curl.h"

typedef struct slot {
  transfer t;
  lua_Integer id;
  int busy;
} slot;

typedef struct multi {
  CURLM *m;
  slot **slots;
  int nslots, cap, busy;
  int closed;
  int share_ref;   /* keeps the share alive */
  int config_ref;  /* the config table, for handles made later */
  CURLSH *sh;
  /* the sockets libcurl wants watched, and a scratch copy of the ready
   * ones (acting on one may change the watched set) */
  struct pollfd *fds, *ready;
  int nfds, fds_cap;
  /* each turn's poll set: libcurl's sockets, then those of the requests on
   * the module's own exchange (`polled`: their slots) */
  struct pollfd *all;
  slot **polled;
  int all_cap;
  int oom;         /* the watched set could not grow */
  double timer_at; /* when libcurl's timer is due (monotonic), or -1 */
} multi;

/* CURLMOPT_SOCKETFUNCTION: watch `s` for what libcurl asks, or stop. */
static int on_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp) {
  multi *mu = (multi *)userp;
  int i;
  (void)e;
  (void)socketp;
  for (i = 0; i < mu->nfds; i++)
    if (mu->fds[i].fd == s) break;
  if (what == CURL_POLL_REMOVE) {
    if (i < mu->nfds) mu->fds[i] = mu->fds[--mu->nfds];
    return 0;
  }
  if (i == mu->nfds) {
    if (mu->nfds == mu->fds_cap) {
      int cap = mu->fds_cap ? mu->fds_cap * 2 : 16;
      struct pollfd *fds = (struct pollfd *)realloc(mu->fds, (size_t)cap * sizeof *fds);
      struct pollfd *ready;
      if (fds == NULL) { mu->oom = 1; return -1; }
      mu->fds = fds;
      ready = (struct pollfd *)realloc(mu->ready, (size_t)cap * sizeof *ready);
      if (ready == NULL) { mu->oom = 1; return -1; }
      mu->ready = ready;
      mu->fds_cap = cap;
    }
    mu->fds[mu->nfds].fd = s;
    mu->nfds++;
  }
  mu->fds[i].events = (short)(((what & CURL_POLL_IN) ? POLLIN : 0) | ((what & CURL_POLL_OUT) ? POLLOUT : 0));
  mu->fds[i].revents = 0;
  return 0;
}

/* CURLMOPT_TIMERFUNCTION: when to give libcurl a turn without an event. */
static int on_timer(CURLM *m, long timeout_ms, void *userp) {
  multi *mu = (multi *)userp;
  (void)m;
  mu->timer_at = timeout_ms < 0 ? -1.0 : transfer_now() + (double)timeout_ms / 1000.0;
  return 0;
}

static multi *check_multi(lua_State *L) {
  multi *mu = (multi *)luaL_checkudata(L, 1, MULTI_TRANSPORT_MT);
  if (mu->closed) luaL_error(L, "attempt to use a closed truto client");
  return mu;
}

static slot *free_slot(lua_State *L, multi *mu) {
  int i;
  slot *s;
  for (i = 0; i < mu->nslots; i++)
    if (!mu->slots[i]->busy) return mu->slots[i];
  if (mu->nslots == mu->cap) {
    int cap = mu->cap ? mu->cap * 2 : 8;
    slot **grown = (slot **)realloc(mu->slots, (size_t)cap * sizeof *grown);
    if (grown == NULL) luaL_error(L, "out of memory");
    mu->slots = grown;
    mu->cap = cap;
  }
  s = (slot *)calloc(1, sizeof *s);
  if (s == NULL) luaL_error(L, "out of memory");
  lua_rawgeti(L, LUA_REGISTRYINDEX, mu->config_ref);
  if (transfer_init(&s->t, L, lua_gettop(L), mu->sh) < 0) {
    free(s);
    luaL_error(L, "curl_easy_init failed");
  }
  lua_pop(L, 1);
  s->t.x.multi = mu->m;
  mu->slots[mu->nslots++] = s;
  return s;
}

/*
 * multi:add(id, method, url, headers, body, timeout, connect_timeout,
 *           max_bytes, stall_timeout, nil, follow_redirects)
 * Starts one request; `id` comes back with its outcome from perform().
 */
static int multi_add(lua_State *L) {
  multi *mu = check_multi(L);
  lua_Integer id = luaL_checkinteger(L, 2);
  slot *s;
  lua_settop(L, 12);
  lua_pushnil(L);
  lua_replace(L, 11); /* no sinks in a batch */
  s = free_slot(L, mu);
  transfer_prepare(L, &s->t, 3);
  s->id = id;
  if (s->t.own) {
    exchange *x = &s->t.x;
    if (exchange_needs_connect(x)) exchange_connect(x);
    else exchange_io(x, POLLOUT); /* a kept connection takes it at once */
    s->busy = 1;
    mu->busy++;
    return 0;
  }
  /* over TLS, wait to learn whether the first connection speaks HTTP/2 and
   * multiplex on it rather than opening one connection per transfer (its
   * handshake says so). Plain http never multiplexes here: waiting would
   * hold every transfer back until the first answer is in. */
  curl_easy_setopt(s->t.easy, CURLOPT_PIPEWAIT,
                   strncmp(lua_tostring(L, 4), "https:", 6) == 0 ? 1L : 0L);
  s->id = id;
  if (curl_multi_add_handle(mu->m, s->t.easy) != CURLM_OK) {
    return luaL_error(L, "curl_multi_add_handle failed");
  }
  s->busy = 1;
  mu->busy++;
  return 0;
}

/* Writes one finished transfer into `out` (six slots from 6n + 1). */
static void emit(lua_State *L, multi *mu, slot *s, CURLcode rc, int n) {
  lua_Integer base = (lua_Integer)n * 6;
  int k;
  if (!s->t.own) curl_multi_remove_handle(mu->m, s->t.easy);
  lua_pushinteger(L, s->id);
  lua_rawseti(L, 3, base + 1);
  transfer_finish(L, &s->t, rc);
  lua_settop(L, 3 + 5); /* an answer's 3 values padded with nils */
  for (k = 5; k >= 1; k--) lua_rawseti(L, 3, base + 1 + k); /* pops the top */
  s->busy = 0;
  mu->busy--;
}

/* The transfers libcurl says are done, into `out` after the n already there. */
static int collect(lua_State *L, multi *mu, int n) {
  CURLMsg *msg;
  int left = 0;
  while ((msg = curl_multi_info_read(mu->m, &left)) != NULL) {
    slot *s = NULL;
    if (msg->msg != CURLMSG_DONE) continue;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
    if (msg->easy_handle == s->t.x.conn) {
      /* a connection for the module's own exchange is open (or failed) */
      exchange *x = &s->t.x;
      exchange_connected(x, msg->data.result);
      exchange_io(x, POLLOUT);
      continue;
    }
    emit(L, mu, s, msg->data.result, n++);
  }
  return n;
}

/* Gives libcurl its timer's turn when it is due. */
static void timer_turn(multi *mu, double now) {
  int running;
  if (mu->timer_at >= 0 && now >= mu->timer_at) {
    mu->timer_at = -1;
    curl_multi_socket_action(mu->m, CURL_SOCKET_TIMEOUT, 0, &running);
  }
}

/* Ends the transfers idle past their stall_timeout as libcurl would when
 * the progress callback stops them (a stalled transfer is never visited,
 * so the callback cannot). Returns the new n; *next: the earliest time a
 * running one would stall (or left as it was). */
static int stalls(lua_State *L, multi *mu, int n, double now, double *next) {
  int i;
  for (i = 0; i < mu->nslots; i++) {
    slot *s = mu->slots[i];
    transfer *t = &s->t;
    double due;
    if (!s->busy || t->own || !(t->stall_timeout > 0)) continue;
    due = t->last_move + t->stall_timeout;
    if (now > due) {
      t->stalled = 1;
      emit(L, mu, s, CURLE_ABORTED_BY_CALLBACK, n++);
    } else if (due < *next) {
      *next = due;
    }
  }
  return n;
}

/* The requests on the module's own exchange: their timeouts, their
 * connections to open, and the finished ones into `out`. Returns the new
 * n; *next: the earliest time one of them has a deadline. */
static int own_turn(lua_State *L, multi *mu, int n, double now, double *next) {
  int i;
  for (i = 0; i < mu->nslots; i++) {
    slot *s = mu->slots[i];
    exchange *x = &s->t.x;
    if (!s->busy || !s->t.own) continue;
    exchange_tick(x, now);
    if (exchange_needs_connect(x)) exchange_connect(x);
    if (x->state == X_DONE) {
      emit(L, mu, s, CURLE_OK, n++);
    } else {
      double due = exchange_due(x);
      if (due < *next) *next = due;
    }
  }
  return n;
}

/* The poll set of this turn (libcurl's sockets first); its size, or -1
 * out of memory. */
static int poll_set(multi *mu) {
  int i, k = mu->nfds;
  if (mu->all_cap < mu->nfds + mu->nslots) {
    int cap = mu->nfds + mu->nslots + 16;
    struct pollfd *all = (struct pollfd *)realloc(mu->all, (size_t)cap * sizeof *all);
    slot **polled;
    if (all == NULL) return -1;
    mu->all = all;
    polled = (slot **)realloc(mu->polled, (size_t)cap * sizeof *polled);
    if (polled == NULL) return -1;
    mu->polled = polled;
    mu->all_cap = cap;
  }
  if (mu->nfds) memcpy(mu->all, mu->fds, (size_t)mu->nfds * sizeof *mu->all);
  for (i = 0; i < mu->nslots; i++) {
    slot *s = mu->slots[i];
    short events;
    if (!s->busy || !s->t.own) continue;
    events = exchange_events(&s->t.x);
    if (events == 0) continue;
    mu->all[k].fd = s->t.x.fd;
    mu->all[k].events = events;
    mu->all[k].revents = 0;
    mu->polled[k - mu->nfds] = s;
    k++;
  }
  return k;
}

/*
 * multi:perform(wait, out) -> n
 * Moves every transfer on, waiting up to `wait` seconds for one to finish
 * when none has yet, and writes the n transfers that finished into the
 * array `out` (the caller's, reused from call to call: no table per
 * transfer), six slots each from out[6k + 1]:
 *   id, status, headers, body, nil, nil            an answer
 *   id, nil, kind, message, sent, which_timeout     no answer
 * Slots past 6n keep what an earlier call left there.
 */
static int multi_perform(lua_State *L) {
  multi *mu = check_multi(L);
  lua_Number wait = luaL_optnumber(L, 2, 0);
  double now = transfer_now(), deadline;
  int n = 0, i;
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  if (!(wait >= 0)) wait = 0;
  if (wait > 86400) wait = 86400;
  deadline = now + wait;
  for (i = 0; i < mu->nslots; i++) mu->slots[i]->t.L = L;
  for (;;) {
    double until = deadline, next_stall = deadline;
    int timeout_ms, ready = 0, r, npoll;
    timer_turn(mu, now);
    n = collect(L, mu, n);
    n = stalls(L, mu, n, now, &next_stall);
    n = own_turn(L, mu, n, now, &next_stall);
    if (mu->oom) {
      for (i = 0; i < mu->nslots; i++) mu->slots[i]->t.L = NULL;
      return luaL_error(L, "out of memory");
    }
    if (n > 0 || mu->busy == 0) break;
    if (mu->timer_at >= 0 && mu->timer_at < until) until = mu->timer_at;
    if (next_stall < until) until = next_stall;
    timeout_ms = until <= now ? 0 : (int)transfer_milliseconds(until - now); /* the one rounding rule */
    npoll = poll_set(mu);
    if (npoll < 0) {
      for (i = 0; i < mu->nslots; i++) mu->slots[i]->t.L = NULL;
      return luaL_error(L, "out of memory");
    }
    r = poll(mu->all, (nfds_t)npoll, timeout_ms);
    if (r > 0) {
      int nfds = mu->nfds;
      /* acting on a socket may change libcurl's watched set: act on a copy */
      for (i = 0; i < nfds; i++)
        if (mu->all[i].revents) mu->ready[ready++] = mu->all[i];
      for (i = 0; i < ready; i++) {
        short ev = mu->ready[i].revents;
        int bits = 0, running;
        if (ev & (POLLIN | POLLPRI | POLLHUP)) bits |= CURL_CSELECT_IN;
        if (ev & POLLOUT) bits |= CURL_CSELECT_OUT;
        if (ev & (POLLERR | POLLNVAL)) bits |= CURL_CSELECT_ERR;
        curl_multi_socket_action(mu->m, mu->ready[i].fd, bits, &running);
      }
      for (i = nfds; i < npoll; i++)
        if (mu->all[i].revents) {
          exchange_io(&mu->polled[i - nfds]->t.x, mu->all[i].revents);
          ready++;
        }
    }
    now = transfer_now();
    /* a signal (a stop request, say) goes back to Lua at once */
    if (r < 0) {
      n = collect(L, mu, n);
      break;
    }
    if (ready == 0 && now >= deadline && (mu->timer_at < 0 || mu->timer_at > now)) {
      n = collect(L, mu, n);
      n = stalls(L, mu, n, now, &next_stall);
      n = own_turn(L, mu, n, now, &next_stall);
      break;
    }
  }
  for (i = 0; i < mu->nslots; i++) mu->slots[i]->t.L = NULL;
  lua_pushinteger(L, n);
  return 1;
}

/* multi:pending() -> number of requests still running */
static int multi_pending(lua_State *L) {
  multi *mu = check_multi(L);
  lua_pushinteger(L, mu->busy);
  return 1;
}

static int multi_close(lua_State *L) {
  multi *mu = (multi *)luaL_checkudata(L, 1, MULTI_TRANSPORT_MT);
  int i;
  if (mu->closed) return 0;
  mu->closed = 1;
  for (i = 0; i < mu->nslots; i++) {
    slot *s = mu->slots[i];
    if (s->busy) curl_multi_remove_handle(mu->m, s->t.easy);
    transfer_cleanup(&s->t);
    free(s);
  }
  free(mu->slots);
  mu->slots = NULL;
  mu->nslots = mu->cap = mu->busy = 0;
  if (mu->m) curl_multi_cleanup(mu->m); /* may still tell on_socket */
  mu->m = NULL;
  free(mu->fds);
  free(mu->ready);
  free(mu->all);
  free(mu->polled);
  mu->fds = mu->ready = mu->all = NULL;
  mu->polled = NULL;
  mu->all_cap = 0;
  mu->nfds = mu->fds_cap = 0;
  luaL_unref(L, LUA_REGISTRYINDEX, mu->share_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, mu->config_ref);
  mu->share_ref = mu->config_ref = LUA_NOREF;
  return 0;
}

int transport_multi_new(lua_State *L) {
  multi *mu;
  int ref;
  lua_settop(L, 1);
  if (!lua_istable(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  }
  mu = (multi *)lua_newuserdatauv(L, sizeof *mu, 0);
  memset(mu, 0, sizeof *mu);
  mu->closed = 1;
  mu->share_ref = mu->config_ref = LUA_NOREF;
  luaL_getmetatable(L, MULTI_TRANSPORT_MT);
  lua_setmetatable(L, -2);
  mu->m = curl_multi_init();
  if (mu->m == NULL) return luaL_error(L, "curl_multi_init failed");
  mu->closed = 0;
  mu->sh = transport_share_from(L, 1, &ref);
  mu->share_ref = ref;
  lua_pushvalue(L, 1);
  mu->config_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  /* reuse connections across requests; HTTP/2 multiplexing when offered */
  curl_multi_setopt(mu->m, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
  mu->timer_at = -1;
  curl_multi_setopt(mu->m, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(mu->m, CURLMOPT_SOCKETDATA, (void *)mu);
  curl_multi_setopt(mu->m, CURLMOPT_TIMERFUNCTION, on_timer);
  curl_multi_setopt(mu->m, CURLMOPT_TIMERDATA, (void *)mu);
  return 1;
}

void transport_multi_open(lua_State *L) {
  static const luaL_Reg methods[] = {
    { "add", multi_add },
    { "perform", multi_perform },
    { "pending", multi_pending },
    { "close", multi_close },
    { NULL, NULL }
  };
  luaL_newmetatable(L, MULTI_TRANSPORT_MT);
  lua_pushcfunction(L, multi_close);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, multi_close);
  lua_setfield(L, -2, "__close");
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}
