-- Several settle.lua steps in one call, for a store that is not a cluster (every earner's
-- slot is on it): each credit is settle.lua's own step (included below by
-- livesrv/store/scripts.py) on its own keys, in order, exactly as separate calls would be.
-- KEYS: settle.lua's KEYS of each credit, one after the other (ARGV 1 per credit)
-- ARGV: 1 KEYS per credit, 2 ARGV per credit, 3.. settle.lua's ARGV of each credit
-- Each earner's wallet is published once, after all of its credits in the batch (the
-- nodes keep only the newest balances anyway), not once per credit.
-- Returns settle.lua's reply of each credit, in order.
--@step settle
--@step wallet_publish
local nk, na = tonumber(ARGV[1]), tonumber(ARGV[2])
local out, wallets, order = {}, {}, {}
for i = 0, #KEYS / nk - 1 do
  local k = {unpack(KEYS, i * nk + 1, i * nk + nk)}
  local a = {unpack(ARGV, 3 + i * na, 2 + i * na + na)}
  a[na + 1] = '0'
  out[i + 1] = settle(k, a)
  if out[i + 1][1] == 1 and not wallets[k[1]] then
    wallets[k[1]] = {a[8], a[7]}
    order[#order + 1] = k[1]
  end
end
for _, wallet in ipairs(order) do wallet_publish({wallet}, wallets[wallet]) end
return out
