"""edge_pusher: signed OTA delivery of quantized models (TUF repository, push step, device agent).

Modules are split by who imports them: devices use ``device``, ``slots``, ``selftest``,
``fetcher``, ``naming`` (python-tuf, numpy, LiteRT only); publishers add ``repository``,
``keys``, ``lock``, ``buckets``, ``push``; only ``component`` imports kfp.
"""
