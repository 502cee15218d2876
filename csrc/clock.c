/*
 * clock.c - core.now, core.sleep and core.milliseconds (see clock.h). Must never read the
 * wall clock, and never sleep inside nginx: the Lua layer picks
 * ngx.sleep there.
 */
#include <errno.h>
#include <math.h>
#include <time.h>

#include "clock.h"

double clock_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

long clock_milliseconds(double seconds) {
  double ms = seconds * 1000.0;
  if (!(ms >= 1.0)) return 1L;
  if (ms >= 2147483647.0) return 2147483647L;
  return (long)ceil(ms);
}

/* core.milliseconds(seconds) -> whole milliseconds (clock_milliseconds) */
static int core_milliseconds(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)clock_milliseconds((double)luaL_checknumber(L, 1)));
  return 1;
}

/* core.now() -> seconds on a monotonic clock (for elapsed and deadlines) */
static int core_now(lua_State *L) {
  lua_pushnumber(L, (lua_Number)clock_now());
  return 1;
}

/* core.sleep(seconds): the default wait between retries outside nginx.
 * Nothing for 0, negative or NaN; at most a day; resumes after signals. */
static int core_sleep(lua_State *L) {
  lua_Number s = luaL_checknumber(L, 1);
  struct timespec ts;
  if (s <= 0 || s != s) return 0;
  if (s > 86400) s = 86400;
  ts.tv_sec = (time_t)s;
  ts.tv_nsec = (long)((s - (lua_Number)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
  return 0;
}

void clock_open(lua_State *L) {
  static const luaL_Reg functions[] = {
    { "now", core_now },
    { "sleep", core_sleep },
    { "milliseconds", core_milliseconds },
    { NULL, NULL }
  };
  luaL_setfuncs(L, functions, 0);
}
