-- Hand-made plans (core.operation called directly, not through
-- truto.call): sides without fields, required names that are not
-- described, an enum with a false member, field names that are empty or
-- not UTF-8, an unknown type code. Every answer is what the builder that
-- read the plan from Lua tables gave (recorded below), on every Lua.
local core = require "truto.core"
local T = core.FIELD_TYPES

local plans = {
  { path = "/x", query = { open = true } },
  { path = "/x", query = { open = false, required = { "a" }, account = "a" } },
  { path = "/x", query = { fields = {}, required = { "zz", "a" }, account = "a", names = "q, r" } },
  { path = "/x", after_id = "/m", body = { fields = { ["n\255"] = { t = T.string } }, required = { "n\255" } },
    query = { fields = { a = { t = T.enum, values = { x = true, ["y z"] = true, w = false }, expected = "x, y z" },
      b = { t = 99 } }, account = "a", hints = { c = "hint for c" } } },
  { path = "/x", body = { open = true, fields = { [""] = { t = T.integer, min = 3 } }, required = { "" } },
    query = { fields = { [""] = { t = T.boolean } }, required = { "" } } },
}
local inputs = {
  { nil, nil, nil, nil }, { {}, {}, "acc", 1 }, { { a = 1 }, { a = "x" }, "y z", "i" },
  { { ["n\255"] = "v" }, { a = "y z", b = 1 }, nil, "i" },
  { { [""] = 2 }, { [""] = true }, "x", 5 }, { { [""] = 3, q = 1 }, { c = 1 }, "x", 5 },
  { { [""] = core.null }, { [""] = core.null, zz = 1 }, "a", 5 },
  { {}, { b = "s" }, "x", "id" }, { {}, { a = "w" }, "w", "id" }, { {}, { zz = 1 }, "x", "id" },
}

-- "plan/input ok | target_or_nil | field | message", as recorded
local WANT = {
  "1/1 true | /x | nil | nil",
  "1/2 true | /x | nil | nil",
  "1/3 true | /x?a=x | nil | nil",
  "1/4 true | /x?a=y%20z&b=1 | nil | nil",
  "1/5 true | nil | [\034\034] | [\034\034]: is an empty key",
  "1/6 true | /x?c=1 | nil | nil",
  "1/7 true | /x?zz=1 | nil | nil",
  "1/8 true | /x?b=s | nil | nil",
  "1/9 true | /x?a=w | nil | nil",
  "1/10 true | /x?zz=1 | nil | nil",
  "2/1 true | nil | a | a: is required (in the query, or as the client's a)",
  "2/2 true | /x | nil | nil",
  "2/3 true | nil | a | a: unknown query parameter (expected one of none)",
  "2/4 true | nil | a | a: unknown query parameter (expected one of none)",
  "2/5 true | nil |  | : unknown query parameter (expected one of none)",
  "2/6 true | nil | c | c: unknown query parameter (expected one of none)",
  "2/7 true | nil |  | : unknown query parameter (expected one of none)",
  "2/8 true | nil | b | b: unknown query parameter (expected one of none)",
  "2/9 true | nil | a | a: unknown query parameter (expected one of none)",
  "2/10 true | nil | zz | zz: unknown query parameter (expected one of none)",
  "3/1 true | nil | zz | zz: is required (in the query, or as the client's zz)",
  "3/2 true | nil | zz | zz: is required (in the query, or as the client's zz)",
  "3/3 true | nil | a | a: unknown query parameter (expected one of q, r)",
  "3/4 true | nil | a | a: unknown query parameter (expected one of q, r)",
  "3/5 true | nil |  | : unknown query parameter (expected one of q, r)",
  "3/6 true | nil | c | c: unknown query parameter (expected one of q, r)",
  "3/7 true | nil |  | : unknown query parameter (expected one of q, r)",
  "3/8 true | nil | b | b: unknown query parameter (expected one of q, r)",
  "3/9 true | nil | a | a: unknown query parameter (expected one of q, r)",
  "3/10 true | nil | zz | zz: unknown query parameter (expected one of q, r)",
  "4/1 true | nil | id | id: must be a non-empty string or an integer (got nil)",
  "4/2 true | nil | n? | n?: is required",
  "4/3 true | nil | a | a: unknown body field (expected one of none)",
  "4/4 true | nil | body | body: is not valid UTF-8 (bad byte at offset 1)",
  "4/5 true | nil |  | : unknown body field (expected one of none)",
  "4/6 true | nil |  | : unknown body field (expected one of none)",
  "4/7 true | nil |  | : unknown body field (expected one of none)",
  "4/8 true | nil | n? | n?: is required",
  "4/9 true | nil | n? | n?: is required",
  "4/10 true | nil | n? | n?: is required",
  "5/1 true | nil | body | body: is required (a table of the fields to send)",
  "5/2 true | nil |  | : is required",
  "5/3 true | nil |  | : is required",
  "5/4 true | nil | body | body: is not valid UTF-8 (bad byte at offset 1)",
  "5/5 true | nil |  | : must be at least 3 (got 2)",
  "5/6 true | nil | c | c: unknown query parameter (expected one of none)",
  "5/7 true | nil |  | : must be a whole number (got userdata)",
  "5/8 true | nil |  | : is required",
  "5/9 true | nil |  | : is required",
  "5/10 true | nil |  | : is required",
}

describe("core.operation on hand-made plans", function()
  it("builds and refuses exactly as recorded", function()
    local i = 0
    for pi, p in ipairs(plans) do
      local build = core.operation(p)
      for ii, a in ipairs(inputs) do
        local r = { pcall(build, a[1], a[2], a[3], a[4]) }
        for k = 1, 4 do r[k] = tostring(r[k]) end
        i = i + 1
        assert.equal(WANT[i], pi .. "/" .. ii .. " " .. table.concat(r, " | ", 1, 4))
      end
    end
    assert.equal(#WANT, i)
  end)
end)
