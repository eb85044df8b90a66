"""The Hub API of the local server: every route, registered by importing its module (stdlib only).

- :mod:`kalm.hub.server.api.repos`: whoami, validate-yaml, create/delete, listings, info, settings;
- :mod:`kalm.hub.server.api.refs`: refs, commits, tags, branches;
- :mod:`kalm.hub.server.api.files`: tree, paths-info, preupload, commit, resolve;
- :mod:`kalm.hub.server.api.lfs`: the Git LFS batch and upload endpoints;
- :mod:`kalm.hub.server.api.xet`: the upload half of Xet (token, xorbs, shards).

The endpoints and their shapes follow ``shared/design/hub.md``; :mod:`kalm.hub.server.routing` holds the
route table and :func:`dispatch`.
"""

from __future__ import annotations

from kalm.hub.server.api import files, lfs, refs, repos, xet  # noqa: F401 - importing registers the routes
from kalm.hub.server.routing import Hub, dispatch

__all__ = ["Hub", "dispatch"]
