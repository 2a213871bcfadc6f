"""The unit-of-work engine (executor side): packing Arrow batches into whole units, and running a
function over them on Spark (the packed engine and the applyInPandas reference)."""
