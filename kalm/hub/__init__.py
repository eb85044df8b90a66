"""The dataset hub: versioned publish/pull of rollout datasets and models through the real HF clients.

- :mod:`kalm.hub.endpoint` decides the endpoint (the local server by default, the real Hub when named)
  and sets the clients' import-time switches; call :func:`kalm.hub.endpoint.ensure_endpoint` first.
- :mod:`kalm.hub.publish` publishes and pulls rollout datasets and models (commit + immutable tag).
- :mod:`kalm.hub.server` is the local Hub-compatible server over the store of :mod:`kalm.hub.store`;
  its routes are in :mod:`kalm.hub.api` (Git LFS and the upload half of Xet included), and
  :mod:`kalm.hub.fsck` verifies and repairs a store.
- :mod:`kalm.hub.cli` implements ``kalm hub serve|ls|push|pull|tags|mirror|fsck``.

Importing this package is cheap: the server modules use the standard library only.
"""
