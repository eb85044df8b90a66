"""The dataset hub: versioned publish/pull of rollout datasets and models through the real HF clients.

Two sides. :mod:`kalm.hub.server` is the local Hub-compatible server (standard library only, run in its
own process). Everything else here is the client side, by concept:

- :mod:`kalm.hub.endpoint`: which Hub (the local server by default, the real Hub when named) and the
  ``HfApi`` for it; :mod:`kalm.hub.local_server` starts the server as a child process;
  :mod:`kalm.hub.hf_config` sets the clients' import-time switches (and holds the one patch of them);
- :mod:`kalm.hub.datasets` and :mod:`kalm.hub.models`: publish and pull (commit + immutable tag);
- :mod:`kalm.hub.commits`: upload, one commit, tag (the concurrency rules); :mod:`kalm.hub.versions`:
  the versions a repo has; :mod:`kalm.hub.naming`: the ``REPO@REV`` and ``vMAJOR.MINOR`` grammar;
- :mod:`kalm.hub.cards`: dataset and model cards; :mod:`kalm.hub.provenance`: what a publish records;
- :mod:`kalm.hub.errors`: client errors as one-line ``HubError``; :mod:`kalm.hub.mirror`: copy a repo
  with its tags to another endpoint; :mod:`kalm.hub.cli`: ``kalm hub serve|ls|push|pull|tags|mirror|fsck``.

Importing this package is cheap: it imports nothing itself.
"""
