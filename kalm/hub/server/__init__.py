"""The local Hub-compatible server: the standard library (plus ``filelock`` and PyYAML), no HF client, no
torch.

- :mod:`kalm.hub.server.serve`: the HTTP server (``kalm hub serve``, ``python -m kalm.hub.server``);
- :mod:`kalm.hub.server.api`: the routes the real clients call (repos, refs, files, Git LFS, Xet uploads),
  over :mod:`kalm.hub.server.routing` (route table, ``dispatch``), :mod:`kalm.hub.server.http`
  (requests and responses) and :mod:`kalm.hub.server.payload` (JSON/NDJSON bodies);
- :mod:`kalm.hub.server.store`: the on-disk store (repos, refs, commits), built on
  :mod:`kalm.hub.server.objects` (commit records, atomic writes, repo locks), :mod:`kalm.hub.server.blobs`
  (content-addressed files), :mod:`kalm.hub.server.xet` (Xet xorbs and shards) and
  :mod:`kalm.hub.server.tree` (listings, repo info);
- :mod:`kalm.hub.server.validate`: the Hub's errors for bad input; :mod:`kalm.hub.server.paths`: the
  default store folder; :mod:`kalm.hub.server.fsck`: verify and repair a store.

Nothing here imports the client side of :mod:`kalm.hub` (``tests/hub/test_layering.py`` checks it), so the
server starts fast in its own process and can be copied out as a standalone program.
"""
