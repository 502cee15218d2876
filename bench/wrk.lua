-- bench/wrk.lua: the ceiling — wrk POSTing the request the module sends
-- (same target from the command line, same body bytes, same header set,
-- with one fixed Idempotency-Key of the same length as a fresh uuid).
--   BENCH_BODY=... BENCH_TOKEN=... wrk -t1 -c1 -d5s -s bench/wrk.lua URL
-- Must never do work per request: wrk builds the request once.
-- luacheck: globals wrk
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
wrk.headers["User-Agent"] = os.getenv("BENCH_USER_AGENT") or "truto-lua"
wrk.headers["Idempotency-Key"] = "3b0f6c52-9d1e-4a7b-8c2f-5e6d7a8b9c0d"
