/*
 * signals.c - core.signals: lets a long job (truto-groups import) learn
 * that SIGINT, SIGTERM or SIGHUP arrived, so it can stop starting work,
 * give the work in flight a grace period and record what it abandoned,
 * instead of dying in the middle of a transfer.
 *
 *   core.signals.watch{ "INT", "TERM", "HUP" }  installs the handler (and
 *                                               forgets earlier catches)
 *   core.signals.caught() -> name, count | nil  the first signal caught
 *                                               since watch, and how many
 *   core.signals.restore()                      puts the earlier handlers back
 *
 * The handler only stores into one `volatile sig_atomic_t` (the one C
 * global this library allows) and Lua polls it. It is installed without
 * SA_RESTART, so a poll(2) that libcurl is blocked in returns at once
 * (EINTR). The handlers it replaced are kept in a userdata (an upvalue of
 * these functions), put back by restore() or when that userdata is
 * collected. Must never run Lua, allocate or lock in the handler, and never
 * leave its handler installed once the Lua state that set it is gone.
 */
#include <signal.h>
#include <string.h>

#include "class.h"
#include "signals.h"

#define WATCH_STATE_CLASS "truto.signal_watch"

/* first caught signal number + 64 * how many were caught (capped) */
static volatile sig_atomic_t caught_state = 0;

#define SIGNO_SPAN 64
#define MAX_COUNT 1000

static const struct {
  const char *name;
  int signo;
} WATCHABLE[] = {
  { "INT", SIGINT }, { "TERM", SIGTERM }, { "HUP", SIGHUP },
};
#define NWATCHABLE ((int)(sizeof WATCHABLE / sizeof WATCHABLE[0]))

typedef struct watch_state {
  struct sigaction previous[NWATCHABLE];
  int installed[NWATCHABLE];
} watch_state;

static void on_signal(int signo) {
  sig_atomic_t state = caught_state;
  int first = state ? (int)(state % SIGNO_SPAN) : signo;
  int count = (int)(state / SIGNO_SPAN);
  if (count < MAX_COUNT) count++;
  caught_state = (sig_atomic_t)(count * SIGNO_SPAN + first);
}

static watch_state *state_of(lua_State *L) {
  return (watch_state *)lua_touserdata(L, lua_upvalueindex(1));
}

static void restore_all(watch_state *w) {
  int i;
  for (i = 0; i < NWATCHABLE; i++) {
    if (w->installed[i]) {
      sigaction(WATCHABLE[i].signo, &w->previous[i], NULL);
      w->installed[i] = 0;
    }
  }
}

static int watchable_index(const char *name) {
  int i;
  for (i = 0; i < NWATCHABLE; i++)
    if (strcmp(WATCHABLE[i].name, name) == 0) return i;
  return -1;
}

/*
 * core.signals.watch(names) -> true
 * names: a list of "INT", "TERM", "HUP". Catches those signals from now on
 * (replacing any handler set by an earlier watch) and forgets what was
 * caught before. Raises on an unknown name.
 */
static int signals_watch(lua_State *L) {
  watch_state *w = state_of(L);
  int wanted[NWATCHABLE];
  int i, n;
  struct sigaction action;
  luaL_checktype(L, 1, LUA_TTABLE);
  memset(wanted, 0, sizeof wanted);
  n = (int)lua_rawlen(L, 1);
  for (i = 1; i <= n; i++) {
    const char *name;
    int k;
    lua_rawgeti(L, 1, i);
    name = lua_tostring(L, -1);
    k = name ? watchable_index(name) : -1;
    if (k < 0)
      return luaL_argerror(L, 1, "signal names are \"INT\", \"TERM\" and \"HUP\"");
    wanted[k] = 1;
    lua_pop(L, 1);
  }
  memset(&action, 0, sizeof action);
  action.sa_handler = on_signal;
  action.sa_flags = 0; /* no SA_RESTART: a blocked poll returns at once */
  sigemptyset(&action.sa_mask);
  for (i = 0; i < NWATCHABLE; i++) sigaddset(&action.sa_mask, WATCHABLE[i].signo);
  restore_all(w);
  caught_state = 0;
  for (i = 0; i < NWATCHABLE; i++) {
    if (!wanted[i]) continue;
    if (sigaction(WATCHABLE[i].signo, &action, &w->previous[i]) != 0) {
      restore_all(w);
      return luaL_error(L, "sigaction(SIG%s) failed", WATCHABLE[i].name);
    }
    w->installed[i] = 1;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* core.signals.caught() -> name, count | nil: the first signal caught since
 * watch ("INT", "TERM" or "HUP") and how many arrived in all. */
static int signals_caught(lua_State *L) {
  sig_atomic_t state = caught_state;
  int i, signo;
  if (state == 0) {
    lua_pushnil(L);
    return 1;
  }
  signo = (int)(state % SIGNO_SPAN);
  for (i = 0; i < NWATCHABLE; i++) {
    if (WATCHABLE[i].signo == signo) {
      lua_pushstring(L, WATCHABLE[i].name);
      lua_pushinteger(L, (lua_Integer)(state / SIGNO_SPAN));
      return 2;
    }
  }
  lua_pushnil(L);
  return 1;
}

/* core.signals.restore(): the handlers watch replaced are back; what was
 * caught stays readable through caught(). Idempotent. */
static int signals_restore(lua_State *L) {
  restore_all(state_of(L));
  return 0;
}

static int watch_state_gc(lua_State *L) {
  restore_all((watch_state *)lua_touserdata(L, 1));
  return 0;
}

void signals_open(lua_State *L) {
  static const luaL_Reg functions[] = {
    { "watch", signals_watch },
    { "caught", signals_caught },
    { "restore", signals_restore },
    { NULL, NULL }
  };
  static const luaL_Reg meta[] = {
    { "__gc", watch_state_gc },
    { NULL, NULL }
  };
  class_register(L, WATCH_STATE_CLASS, NULL, meta);
  lua_newtable(L);
  class_new(L, WATCH_STATE_CLASS, sizeof(watch_state));
  luaL_setfuncs(L, functions, 1);
  lua_setfield(L, -2, "signals");
}
