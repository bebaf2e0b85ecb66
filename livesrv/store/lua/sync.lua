-- A durability barrier: does nothing itself. Run with a key of one slot, its reply waits
-- for the batch barrier and the durability wait on that slot's master, so everything the
-- master did before it (other connections' writes included) is then on its replicas.
-- KEYS: 1 any key of the slot
return 1
