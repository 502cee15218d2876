-- examples/demo.lua: what `make demo` runs. Starts the bundled mock of
-- Truto (mock/run), creates a group exactly as the API reference's example
-- does, prints the group and what the call did, and stops the mock.
-- Never talks to the real Truto: base_url is the mock's loopback address.

local truto = require "truto"

local function start_mock()
  local p = assert(io.popen("mock/run start 2>&1"))
  local out = p:read("*a")
  p:close()
  local url, dir = out:match("base_url=(%S+)"), out:match("dir=(%S+)")
  if not url then error("could not start the mock:\n" .. out) end
  return url, dir
end

local url, dir = start_mock()
local ok, failure = pcall(function()
  local client = assert(truto.new{
    token = os.getenv("MOCK_TOKEN") or "mock-token",
    base_url = url,
    user_agent = "truto-demo",
  })
  print(("truto-lua %s -> %s"):format(truto.VERSION, url))

  local group, meta = client.groups.create(
    { name = "Engineering", description = "Builds things", remote_data = { parent_id = 7 } },
    { integrated_account_id = "62f44730-dd91-461e-bd6a-aedd9e0ad79d", group_type = "team",
      truto_exclude_fields = { "organization" }, remote_query = { notify = true } })
  if not group then error(tostring(meta)) end

  print("created group:")
  local keys = {}
  for k in pairs(group) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local v = group[k]
    print(("  %-12s %s"):format(k, type(v) == "table" and truto.json_encode(v) or tostring(v)))
  end
  print(("status %d, %d attempt(s), %.1f ms, idempotency key %s"):format(
    meta.status, meta.attempts, meta.elapsed * 1000, meta.idempotency_key))
  if meta.rate_limit then
    print(("rate limit: %s left of %s, resets in %ss"):format(
      meta.rate_limit.remaining, meta.rate_limit.limit, meta.rate_limit.reset))
  end

  -- the same call with a mistake: caught before anything is sent
  local _, err = client.groups.create({ name = "Ops", group_type = "team" })
  print("a misplaced field is refused locally: " .. tostring(err))
  client:close()
end)
os.execute("mock/run stop " .. dir .. " >/dev/null 2>&1")
if not ok then
  io.stderr:write(tostring(failure), "\n")
  os.exit(1)
end
