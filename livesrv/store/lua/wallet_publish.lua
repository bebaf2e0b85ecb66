-- Publish a wallet's balances on its user's wallet channel (the nodes where the user is
-- signed in send them as a `wallet` event). settle.lua includes it with
-- `--@step wallet_publish`; settle_batch.lua publishes each wallet once after all its credits.
-- KEYS: 1 wallet
-- ARGV: 1 wallet channel, 2 user
local w = redis.call('HMGET', KEYS[1], 'coins', 'diamonds', 'pending')
redis.call('SPUBLISH', ARGV[1], string.format('{"user":%s,"coins":%s,"diamonds":%s,"pending":%s}',
  cjson.encode(ARGV[2]), w[1] or '0', w[2] or '0', w[3] or '0'))
