"""The Hub API of the local server: every route, registered by importing its module (stdlib only).

- :mod:`kalm.hub.api_repos`: whoami, validate-yaml, create/delete, listings, info, settings;
- :mod:`kalm.hub.api_refs`: refs, commits, tags, branches;
- :mod:`kalm.hub.api_files`: tree, paths-info, preupload, commit, resolve;
- :mod:`kalm.hub.api_lfs`: the Git LFS batch and upload endpoints;
- :mod:`kalm.hub.api_xet`: the upload half of Xet (token, xorbs, shards).

The endpoints and their shapes follow ``shared/design/hub.md``; :mod:`kalm.hub.routing` holds the
route table and :func:`dispatch`.
"""

from __future__ import annotations

from kalm.hub import api_files, api_lfs, api_refs, api_repos, api_xet  # noqa: F401 - importing registers the routes
from kalm.hub.routing import Hub, dispatch

__all__ = ["Hub", "dispatch"]
