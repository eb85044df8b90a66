from kalm.hub.naming import split_revision


def test_split_revision(tmp_path):
    assert split_revision("kalm/kalm-clevr-real@v1.0") == ("kalm/kalm-clevr-real", "v1.0")
    assert split_revision("kalm/kalm-clevr-real") == ("kalm/kalm-clevr-real", None)
    folder = tmp_path / "data@2026"
    folder.mkdir()
    assert split_revision(str(folder)) == (str(folder), None)  # an existing path is never split
