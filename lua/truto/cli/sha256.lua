-- truto.cli.sha256: SHA-256 (FIPS 180-4) of a string, in plain Lua.
--
-- The command-line tool derives each row's Idempotency-Key from it, so a
-- resumed run sends the same key for the same row even when the first run
-- was killed before it could record one. Never use it for secrets: it is
-- not constant-time. Loads and gives the same digests on every Lua: the
-- 32-bit operations are Lua 5.3's operators where they exist (compiled
-- from a string, so older Luas never parse them), else bit32 (5.2), bit
-- (LuaJIT) or plain arithmetic (5.1); words are kept in 0 .. 2^32-1.

local K = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
}

local WORD = 0x100000000 -- 2^32
local floor = math.floor

-- band, bxor, bnot and rotr over 32-bit words, for this Lua.
local band, bxor, bnot, rotr, shr

local native = math.type and load and load([[
  return function(a, b) return a & b end, function(a, b) return a ~ b end,
    function(a) return ~a & 0xffffffff end,
    function(x, n) return ((x >> n) | (x << (32 - n))) & 0xffffffff end,
    function(x, n) return x >> n end
]])
local bit32, bit = rawget(_G, "bit32"), nil
if not native and not bit32 then
  local ok, lib = pcall(require, "bit")
  bit = ok and lib or nil
end

if native then
  band, bxor, bnot, rotr, shr = native()
elseif bit32 then
  band, bxor, bnot, rotr, shr = bit32.band, bit32.bxor, bit32.bnot, bit32.rrotate, bit32.rshift
elseif bit then
  -- LuaJIT's bit works on signed 32-bit values: bring results back to 0 .. 2^32-1
  local b_band, b_bxor, b_bnot, b_ror, b_rshift = bit.band, bit.bxor, bit.bnot, bit.ror, bit.rshift
  band = function(a, b) return b_band(a, b) % WORD end
  bxor = function(a, b) return b_bxor(a, b) % WORD end
  bnot = function(a) return b_bnot(a) % WORD end
  rotr = function(x, n) return b_ror(x, n) % WORD end
  shr = function(x, n) return b_rshift(x, n) % WORD end
else
  -- Lua 5.1: bitwise operations a nibble at a time through 16x16 tables
  local AND, XOR = {}, {}
  for a = 0, 15 do
    for b = 0, 15 do
      local r_and, r_xor, bitv = 0, 0, 1
      for _ = 1, 4 do
        local x, y = a % (bitv * 2) >= bitv, b % (bitv * 2) >= bitv
        if x and y then r_and = r_and + bitv end
        if x ~= y then r_xor = r_xor + bitv end
        bitv = bitv * 2
      end
      AND[a * 16 + b], XOR[a * 16 + b] = r_and, r_xor
    end
  end
  local function op(table_of)
    return function(a, b)
      local r, place = 0, 1
      for _ = 1, 8 do
        r = r + table_of[(a % 16) * 16 + b % 16] * place
        a, b, place = floor(a / 16), floor(b / 16), place * 16
      end
      return r
    end
  end
  band, bxor = op(AND), op(XOR)
  bnot = function(a) return WORD - 1 - a end
  shr = function(x, n) return floor(x / 2 ^ n) end
  rotr = function(x, n)
    local low = x % 2 ^ n
    return floor(x / 2 ^ n) + low * 2 ^ (32 - n)
  end
end

-- The big-endian 32-bit word at position i of s.
local function word_at(s, i)
  local a, b, c, d = s:byte(i, i + 3)
  return ((a * 256 + b) * 256 + c) * 256 + d
end

-- The message length in bits as 8 big-endian bytes.
local function length_bytes(n)
  local bits, out = n * 8, {}
  for i = 8, 1, -1 do
    out[i] = string.char(bits % 256)
    bits = floor(bits / 256)
  end
  return table.concat(out)
end

-- sha256(message) -> 64 lowercase hex digits
return function(message)
  local h0, h1, h2, h3 = 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a
  local h4, h5, h6, h7 = 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19
  local padded = message .. "\128" .. string.rep("\0", (55 - #message) % 64) .. length_bytes(#message)
  local w = {}
  for chunk = 1, #padded, 64 do
    for i = 1, 16 do
      w[i] = word_at(padded, chunk + (i - 1) * 4)
    end
    for i = 17, 64 do
      local a, b = w[i - 15], w[i - 2]
      local s0 = bxor(bxor(rotr(a, 7), rotr(a, 18)), shr(a, 3))
      local s1 = bxor(bxor(rotr(b, 17), rotr(b, 19)), shr(b, 10))
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) % WORD
    end
    local a, b, c, d, e, f, g, h = h0, h1, h2, h3, h4, h5, h6, h7
    for i = 1, 64 do
      local S1 = bxor(bxor(rotr(e, 6), rotr(e, 11)), rotr(e, 25))
      local ch = bxor(band(e, f), band(bnot(e), g))
      local t1 = (h + S1 + ch + K[i] + w[i]) % WORD
      local S0 = bxor(bxor(rotr(a, 2), rotr(a, 13)), rotr(a, 22))
      local maj = bxor(bxor(band(a, b), band(a, c)), band(b, c))
      local t2 = (S0 + maj) % WORD
      h, g, f, e, d, c, b, a = g, f, e, (d + t1) % WORD, c, b, a, (t1 + t2) % WORD
    end
    h0, h1, h2, h3 = (h0 + a) % WORD, (h1 + b) % WORD, (h2 + c) % WORD, (h3 + d) % WORD
    h4, h5, h6, h7 = (h4 + e) % WORD, (h5 + f) % WORD, (h6 + g) % WORD, (h7 + h) % WORD
  end
  return string.format("%08x%08x%08x%08x%08x%08x%08x%08x", h0, h1, h2, h3, h4, h5, h6, h7)
end
