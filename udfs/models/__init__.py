"""Model scoring (executor side): the per-worker model cache, scoring pandas frames and Arrow
batches, preprocessing, the signature's input rules and the pandas quarantine. Resolving and
shipping models (driver side) lives in ``batch_scoring.jobs.model_resolution`` and
``batch_scoring.jobs.model_routing``."""
