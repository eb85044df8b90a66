"""User-facing errors. The CLI prints a ``KalmError`` as one line and exits with status 2."""


class KalmError(Exception):
    """Base class of every error caused by user input (config, data, names, hub requests)."""


class ConfigError(KalmError):
    """A configuration value is missing, of the wrong type, or out of range."""


class UnknownNameError(KalmError):
    """A name (environment, goal, level, algorithm) is not registered; the message lists the valid ones."""


class DatasetSchemaError(KalmError):
    """A dataset does not follow kalm's rollout schema or format version."""


class HubError(KalmError):
    """A Hub request failed; the message names the repo, revision and endpoint."""
