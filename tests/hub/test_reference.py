"""``kalm.hub.reference.locate``: the one resolution of "a folder or REPO[@REV]"."""

from __future__ import annotations

import pytest

from kalm.errors import ConfigError
from kalm.hub.reference import Location, locate


def test_an_existing_folder_wins_even_with_an_at_sign(tmp_path):
    folder = tmp_path / "run@v1"
    folder.mkdir()
    assert locate(str(folder), what="policy") == Location(folder)
    assert locate(folder, "v2", what="policy") == Location(folder, None, "v2")  # the caller decides


def test_a_repo_takes_its_revision_from_the_reference_unless_one_is_given():
    assert locate("ns/name", what="dataset") == Location(None, "ns/name", None)
    assert locate("ns/name@v1.0", what="dataset") == Location(None, "ns/name", "v1.0")
    assert locate("ns/name@v1.0", "main", what="dataset") == Location(None, "ns/name", "main")


@pytest.mark.parametrize("reference", ["./missing", "/no/such/folder", "~/no-such-kalm-folder", "../up"])
def test_a_path_that_does_not_exist_is_an_error_naming_it(reference):
    with pytest.raises(
        ConfigError, match=rf"^grounded model '{reference}': no such folder \(make it first\)$"
    ):
        locate(reference, what="grounded model", hint="make it first")


@pytest.mark.parametrize("reference", ["name", "a/b/c", "ns/", "/name"[1:], "ns/@v1"])
def test_a_repo_id_needs_a_namespace_and_a_name(reference):
    with pytest.raises(
        ConfigError, match="is neither an existing folder nor a Hub repo id of the form namespace/name"
    ):
        locate(reference, what="dataset")
