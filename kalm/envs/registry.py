"""The environment registry: ``EnvSuite`` classes found through the ``kalm.envs`` entry-point group.

Each entry point maps a name (``kalm collect --env NAME``) to ``package.module:SuiteClass``; the class is
imported only when the environment is used. Entry points are read from the installed distributions'
metadata on every call (a plugin installed or put on ``sys.path`` at run time is found).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING

from kalm.errors import ConfigError

if TYPE_CHECKING:
    from kalm.envs.base import EnvSuite

ENTRY_POINT_GROUP = "kalm.envs"


@dataclass(frozen=True)
class EnvEntry:
    """One registered environment: its name, ``module:Class`` value and the distribution that registers it.

    ``conflicts`` names other distributions that register the same name with a different value; such a name
    cannot be used until one of them is uninstalled.
    """

    name: str
    value: str
    package: str
    version: str | None = None
    conflicts: tuple[str, ...] = ()

    @property
    def source(self) -> str:
        """``package version`` of the registering distribution, e.g. ``kalm 0.1.0``."""
        return f"{self.package} {self.version}" if self.version else self.package

    def load(self) -> EnvSuite:
        """Import the suite class and instantiate it; a broken plugin raises a one-line ``ConfigError``."""
        from kalm.envs.base import EnvSuite

        where = f"environment {self.name!r} (entry point {self.value!r} of package {self.package!r})"
        if self.conflicts:
            raise ConfigError(
                f"{where} is also registered by {', '.join(self.conflicts)}; uninstall one of them"
            )
        if ":" not in self.value:
            raise ConfigError(f"{where}: expected a value of the form 'package.module:SuiteClass'")
        try:
            cls = metadata.EntryPoint(self.name, self.value, ENTRY_POINT_GROUP).load()
        except (ImportError, AttributeError) as error:
            raise ConfigError(f"{where} cannot be loaded: {type(error).__name__}: {error}") from None
        if not (isinstance(cls, type) and issubclass(cls, EnvSuite)):
            raise ConfigError(f"{where} is {cls!r}; expected a subclass of kalm.envs.base.EnvSuite")
        try:
            suite = cls()
        except TypeError as error:  # e.g. abstract methods left unimplemented
            raise ConfigError(f"{where} cannot be built: {error}") from None
        if getattr(suite, "name", None) != self.name:
            raise ConfigError(
                f"{where}: the suite's name is {getattr(suite, 'name', None)!r}; "
                f"expected {self.name!r}, the name it is registered under"
            )
        return suite


def registered_envs() -> dict[str, EnvEntry]:
    """Every environment registered in the ``kalm.envs`` entry-point group, by name."""
    found: dict[str, EnvEntry] = {}
    for point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = point.dist
        package = dist.metadata["Name"] if dist is not None else "unknown"
        entry = EnvEntry(point.name, point.value, package, dist.version if dist is not None else None)
        previous = found.get(point.name)
        if previous is None:
            found[point.name] = entry
        elif previous.value != entry.value and entry.package not in previous.conflicts:
            # the same distribution may be found twice (an editable install's metadata in the checkout too)
            found[point.name] = EnvEntry(
                previous.name,
                previous.value,
                previous.package,
                previous.version,
                (*previous.conflicts, f"{entry.package} ({entry.value!r})"),
            )
    return found
