-- Several settle.lua steps in one call, for a store that is not a cluster (every earner's
-- slot is on it): each credit is settle.lua's own step (included below by
-- livesrv/store/scripts.py) on its own keys, in order, with the balances, replies and
-- ledger entries separate calls would give; only the holds are fewer (one per earner per
-- batch, below).
-- KEYS: settle.lua's KEYS of each credit, one after the other (ARGV 1 per credit)
-- ARGV: 1 KEYS per credit, 2 ARGV per credit, 3.. settle.lua's ARGV of each credit
-- Each earner's wallet is published once, after all of its credits in the batch (the
-- nodes keep only the newest balances anyway), not once per credit.
-- Returns settle.lua's reply of each credit, in order.
--@step settle
--@step wallet_publish
local nk, na = tonumber(ARGV[1]), tonumber(ARGV[2])
local out, wallets, order = {}, {}, {}
-- One hold per earner per batch: the batch's credits share one clock reading, so they
-- mature together, and their diamonds are one member "first ref|sum" of the earner's
-- holds, written at the end of the batch (or before a clawback of that earner walks the
-- holds), instead of a member per credit (a creator's holds last the whole hold period).
local held, held_order, holds = {}, {}, {}
function holds.flush(key)
  local h = held[key]
  if not h then return end
  held[key] = nil
  h.write(key, h.queue, h.earner, h.due, h.ref, h.sum)
end
-- settle.lua's hold, and settle.lua's function that writes one (write)
function holds.add(key, queue, earner, due, ref, n, write)
  local h = held[key]
  if h and h.due ~= due then
    holds.flush(key)
    h = nil
  end
  if h then
    h.sum = h.sum + n
  else
    held[key] = {queue = queue, earner = earner, due = due, ref = ref, sum = n, write = write}
    held_order[#held_order + 1] = key
  end
end
for i = 0, #KEYS / nk - 1 do
  local k = {unpack(KEYS, i * nk + 1, i * nk + nk)}
  local a = {unpack(ARGV, 3 + i * na, 2 + i * na + na)}
  a[na + 1] = '0'
  a.holds = holds
  out[i + 1] = settle(k, a)
  if out[i + 1][1] == 1 and not wallets[k[1]] then
    wallets[k[1]] = {a[8], a[7]}
    order[#order + 1] = k[1]
  end
end
for _, key in ipairs(held_order) do holds.flush(key) end
for _, wallet in ipairs(order) do wallet_publish({wallet}, wallets[wallet]) end
return out
