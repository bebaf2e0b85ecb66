"""The rules of the economy and the rooms, one module per concept; each money step runs
as one store script."""
