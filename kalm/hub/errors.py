"""Client errors as one-line ``HubError``s that name the repo, the revision and the endpoint."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from kalm.errors import HubError


def http_status(error: HfHubHTTPError) -> int | None:
    """The HTTP status of a client error (``None`` when it carries no response)."""
    return error.response.status_code if error.response is not None else None


@contextlib.contextmanager
def hub_errors(repo_id: str, revision: str | None, endpoint: str, action: str) -> Iterator[None]:
    """Turn client errors into one-line ``HubError``s naming repo, revision and endpoint."""
    where = f"{repo_id!r} at revision {revision or 'main'!r} on {endpoint}"
    try:
        yield
    except RevisionNotFoundError:
        raise HubError(f"{action}: revision {revision!r} not found in {repo_id!r} on {endpoint}") from None
    except RepositoryNotFoundError:
        raise HubError(f"{action}: repository {repo_id!r} not found on {endpoint}") from None
    except EntryNotFoundError as error:
        raise HubError(f"{action}: a file is missing in {where}: {_first_line(error)}") from None
    except HfHubHTTPError as error:
        status = http_status(error) or "?"
        raise HubError(f"{action} failed for {where} (HTTP {status}): {_first_line(error)}") from None
    except OSError as error:  # connection refused, DNS, ... (httpx errors are not OSError: see below)
        raise HubError(f"{action}: cannot reach {endpoint} for {where}: {error}") from None
    except Exception as error:
        if type(error).__module__.startswith(("httpx", "httpcore")):
            raise HubError(f"{action}: cannot reach {endpoint} for {where}: {error}") from None
        raise


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    server = getattr(error, "server_message", None)
    return (server or text).splitlines()[0] if (server or text) else type(error).__name__
