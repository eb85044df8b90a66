"""The environment registry reads the ``kalm.envs`` entry points; broken plugins fail in one line."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import kalm
from kalm.envs import get_suite, registered_envs
from kalm.errors import ConfigError, UnknownNameError
from tests.envs.plugins import write_distribution

NOT_A_SUITE = "class Thing:\n    pass\n"
MISNAMED = (
    "from kalm.envs.clevr import ClevrSuite\n\n"
    "class Renamed(ClevrSuite):\n    pass\n"
)  # registered as 'renamed', but its name is 'clevr'
ABSTRACT = "from kalm.envs import EnvSuite\n\nclass Half(EnvSuite):\n    name = 'half'\n"


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on ``sys.path`` for hand-made distributions; its modules and the suite cache are dropped
    after."""
    monkeypatch.syspath_prepend(str(tmp_path))
    get_suite.cache_clear()
    yield tmp_path
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]
    get_suite.cache_clear()


def test_kalm_registers_its_own_suites_as_entry_points():
    entries = registered_envs()
    assert {name: entries[name].value for name in ("clevr", "metaworld")} == {
        "clevr": "kalm.envs.clevr:ClevrSuite",
        "metaworld": "kalm.envs.metaworld:MetaWorldSuite",
    }
    assert entries["clevr"].source == f"kalm {kalm.__version__}"


def test_a_distribution_on_the_path_registers_an_environment(site):
    write_distribution(
        site, "kalm-renamed", {"renamed": "kalm_renamed:Renamed"}, modules={"kalm_renamed": MISNAMED}
    )
    entries = registered_envs()
    assert entries["renamed"].package == "kalm-renamed"
    assert {"clevr", "metaworld", "renamed"} <= set(entries)
    with pytest.raises(UnknownNameError) as error:
        get_suite("renamd")
    assert str(error.value) == f"unknown environment 'renamd'; registered: {', '.join(sorted(entries))}"


@pytest.mark.parametrize(
    ("value", "module", "message"),
    [
        (
            "kalm_missing:Suite",
            None,
            r"'broken' \(entry point 'kalm_missing:Suite' of package 'kalm-broken'\) cannot be "
            r"loaded: ModuleNotFoundError: No module named 'kalm_missing'",
        ),
        ("kalm_broken", None, r"expected a value of the form 'package.module:SuiteClass'"),
        (
            "kalm_broken:Thing",
            NOT_A_SUITE,
            r"is <class 'kalm_broken.Thing'>; expected a subclass of kalm.envs.base.EnvSuite",
        ),
        (
            "kalm_broken:Renamed",
            MISNAMED,
            r"the suite's name is 'clevr'; expected 'broken', the name it is registered under",
        ),
        ("kalm_broken:Half", ABSTRACT, r"cannot be built: Can't instantiate abstract class Half"),
    ],
)
def test_a_broken_plugin_is_one_line_naming_entry_point_and_package(site, value, module, message):
    write_distribution(
        site, "kalm-broken", {"broken": value}, modules={"kalm_broken": module} if module else None
    )
    with pytest.raises(ConfigError, match=message) as error:
        get_suite("broken")
    assert "\n" not in str(error.value)
    assert get_suite("clevr").name == "clevr"  # the others still load


def test_two_packages_claiming_one_name_are_refused_and_one_package_found_twice_is_not(site):
    write_distribution(site / "a", "kalm-one", {"twice": "kalm_one:Suite"})
    write_distribution(site / "b", "kalm-one", {"twice": "kalm_one:Suite"})
    write_distribution(site / "b", "kalm-two", {"claimed": "kalm_two:Suite"})
    write_distribution(site / "c", "kalm-three", {"claimed": "kalm_three:Other"})
    sys.path[:0] = [str(site / "a"), str(site / "b"), str(site / "c")]  # monkeypatch restores sys.path
    entries = registered_envs()
    assert entries["twice"].conflicts == ()
    assert entries["claimed"].conflicts == ("kalm-three ('kalm_three:Other')",)
    with pytest.raises(ConfigError, match=r"'claimed' .*kalm-two'\) is also registered by kalm-three"):
        get_suite("claimed")
