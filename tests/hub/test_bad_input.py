"""Valid-but-wrong input gets a 400 with a message (never a 500, a hang or a dropped connection)."""

from __future__ import annotations

import base64
import json

import pytest
from huggingface_hub import CommitOperationAdd
from huggingface_hub.errors import BadRequestError, HfHubHTTPError, RevisionNotFoundError

from tests.hub.hub_helpers import raw_exchange, raw_request

DEEP = b"[" * 100_000 + b"]" * 100_000


def _file_line(**value) -> dict:
    return {
        "key": "file",
        "value": {"path": "a.txt", "content": base64.b64encode(b"a").decode(), "encoding": "base64", **value},
    }


COMMIT_BODIES = {
    "value is a string": [{"key": "file", "value": "a.txt"}],
    "value is a list": [{"key": "deletedFile", "value": ["a.txt"]}],
    "header is a list": [{"key": "header", "value": [1]}],
    "invalid base64": [_file_line(content="not base64!")],
    "content is an integer": [_file_line(content=12345)],
    "path is a list": [_file_line(path=["a"])],
    "path is null": [_file_line(path=None)],
    "summary is an object": [{"key": "header", "value": {"summary": {"a": 1}}}, _file_line()],
    "line is a number": [7],
}


def _post(url: str, token: str, body: bytes, content_type: str = "application/json"):
    return raw_request(
        "POST", url, body=body, headers={"Authorization": f"Bearer {token}", "Content-Type": content_type}
    )


def _assert_400(answer, *words: str) -> None:
    status, headers, body = answer
    assert status == 400, (status, body[:300])
    message = json.loads(body)["error"]
    assert message and "\n" not in message and all(word in message for word in words), message


@pytest.mark.parametrize("case", sorted(COMMIT_BODIES))
def test_type_confused_commit_lines_get_400(hub, api, repo_name, case):
    api.create_repo(repo_name)
    body = "\n".join(json.dumps(line) for line in COMMIT_BODIES[case]).encode()
    _assert_400(
        _post(f"{hub.url}/api/models/{repo_name}/commit/main", hub.token, body, "application/x-ndjson")
    )
    assert api.list_repo_files(repo_name) == [".gitattributes"]


@pytest.mark.parametrize(
    "route", ["commit/main", "preupload/main", "paths-info/main", "tag/main", "branch/b"]
)
def test_deeply_nested_json_gets_400(hub, api, repo_name, route):
    api.create_repo(repo_name)
    _assert_400(_post(f"{hub.url}/api/models/{repo_name}/{route}", hub.token, DEEP), "nested too deeply")


@pytest.mark.parametrize(
    "route, body, words",
    [
        ("preupload/main", {"files": "a.txt"}, ("'files'", "list")),
        ("preupload/main", {"files": [1]}, ("object",)),
        ("preupload/main", {"files": [{"path": "a", "size": "big", "sample": ""}]}, ("'size'",)),
        ("preupload/main", {"files": [{"path": "a", "size": 1, "sample": 5}]}, ("'sample'",)),
        ("preupload/main", {"files": [{"path": ["a"], "size": 1, "sample": ""}]}, ("'path'", "string")),
        ("paths-info/main", {"paths": [1, 2]}, ("'paths'",)),
        ("tag/main", {"tag": ["v1"]}, ("'tag'", "string")),
        ("tag/main", {"tag": "v1", "message": 3}, ("'message'",)),
        ("branch/b", {"startingPoint": 3}, ("'startingPoint'",)),
        ("settings", {"gated": "sometimes"}, ("gated",)),
        ("settings", {"private": "no"}, ("'private'", "boolean")),
    ],
)
def test_type_confused_api_bodies_get_400(hub, api, repo_name, route, body, words):
    api.create_repo(repo_name)
    method = "PUT" if route == "settings" else "POST"
    answer = raw_request(
        method,
        f"{hub.url}/api/models/{repo_name}/{route}",
        body=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {hub.token}", "Content-Type": "application/json"},
    )
    _assert_400(answer, *words)


def test_type_confused_lfs_batch_and_repo_creation_get_400(hub, api, repo_name):
    api.create_repo(repo_name)
    for body in ({"operation": "upload", "objects": "x"}, {"operation": "upload", "objects": [1]}):
        _assert_400(
            _post(f"{hub.url}/{repo_name}.git/info/lfs/objects/batch", hub.token, json.dumps(body).encode())
        )
    for body in ({"name": ["x"]}, {"name": "x", "private": "yes"}, {"name": "x", "type": 5}, [1]):
        _assert_400(_post(f"{hub.url}/api/repos/create", hub.token, json.dumps(body).encode()))


def _framed(hub, head: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    request = f"POST /api/repos/create HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {hub.token}\r\n{head}\r\n"
    return raw_exchange(hub.url, request.encode() + body)


@pytest.mark.parametrize(
    "head, body, words",
    [
        ("Content-Length: abc\r\n", b"{}", ("Content-Length",)),
        ("Content-Length: -5\r\n", b"", ("Content-Length",)),
        ("Content-Length: 2\r\nContent-Length: 3\r\n", b"{}", ("Content-Length",)),
        ("Transfer-Encoding: chunked\r\n", b"zz\r\n{}\r\n0\r\n\r\n", ("chunk size",)),
        ("Transfer-Encoding: chunked\r\n", b"2\r\n{}XX0\r\n\r\n", ("CRLF",)),
        ("Transfer-Encoding: gzip\r\n", b"", ("Transfer-Encoding",)),
    ],
)
def test_broken_framing_gets_400_and_a_closed_connection(hub, head, body, words):
    status, headers, answer = _framed(hub, head, body)
    assert status == 400 and headers["Connection"] == "close"
    assert all(word in json.loads(answer)["error"] for word in words)


def test_chunked_bodies_that_are_well_formed_still_work(hub, repo_name):
    name = repo_name.split("/")[1]
    body = json.dumps({"name": name, "organization": "tester"}).encode()
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:5], body[5:])) + b"0\r\n\r\n"
    assert _framed(hub, "Transfer-Encoding: chunked\r\n", chunks)[0] == 200


def test_overlong_names_in_urls_get_400_not_500(hub):
    for url in (
        f"/api/models/{'a' * 5000}/x",
        f"/api/datasets/x/{'b' * 5000}/refs",
        f"/{'c' * 5000}/x/resolve/main/f",
    ):
        status, _, body = raw_request("GET", hub.url + url)
        assert status == 400 and b"Invalid repo id" in body, url
    _assert_400(
        _post(
            f"{hub.url}/api/repos/create",
            hub.token,
            json.dumps({"name": "x", "organization": "o" * 5000}).encode(),
        ),
        "Invalid repo id",
    )


@pytest.mark.parametrize("name", ["x.git", "a" * 97, "-x", "x.", "a--b", "a..b", "é"])
def test_repo_ids_follow_the_hub_rules(hub, name):
    _assert_400(
        _post(f"{hub.url}/api/repos/create", hub.token, json.dumps({"name": name}).encode()),
        "Invalid repo id",
    )


@pytest.mark.parametrize(
    "tag",
    [
        "main",
        "HEAD",
        "refs/heads/main",
        ".",
        "-x",
        "x" * 10_000,
        "a..b",
        "v1.lock",
        "a/.b",
        "v1.",
        "a//b",
        "a b",
        "a~1",
        "a^",
        "a:b",
        "a?",
        "a*",
        "a[",
        "a@{1}",
        "a\\b",
        "0123456789abcdef0123456789abcdef01234567",
    ],
)
def test_tag_names_follow_git_and_the_hub(api, repo_name, tag):
    api.create_repo(repo_name)
    with pytest.raises(BadRequestError, match="Invalid tag name"):
        api.create_tag(repo_name, tag=tag)
    assert api.list_repo_refs(repo_name).tags == []


@pytest.mark.parametrize("branch", ["HEAD", "refs/heads/x", "-x", "a..b", "x.lock", "x" * 300])
def test_branch_names_follow_git(api, repo_name, branch):
    api.create_repo(repo_name)
    with pytest.raises(BadRequestError, match="Invalid branch name"):
        api.create_branch(repo_name, branch=branch)


def test_a_tag_and_a_branch_never_share_a_name(api, repo_name):
    api.create_repo(repo_name)
    api.create_branch(repo_name, branch="dev")
    api.create_tag(repo_name, tag="v1.0")
    for call in (
        lambda: api.create_tag(repo_name, tag="dev"),
        lambda: api.create_branch(repo_name, branch="v1.0"),
    ):
        with pytest.raises(HfHubHTTPError) as clash:
            call()
        assert clash.value.response.status_code == 409


@pytest.mark.parametrize(
    "path, words",
    [
        ("a" * 10_000, ("too long",)),
        ("d/" * 2000 + "f", ("too long",)),
        ("a\nb", ("control",)),
        ("s" * 256, ("too long",)),
    ],
)
def test_paths_have_length_and_depth_limits(api, repo_name, path, words):
    api.create_repo(repo_name)
    with pytest.raises(BadRequestError) as refused:
        api.upload_file(path_or_fileobj=b"x", path_in_repo=path, repo_id=repo_name)
    assert all(word in str(refused.value) for word in words)
    assert api.list_repo_files(repo_name) == [".gitattributes"]


def test_commit_messages_have_a_size_limit(api, repo_name):
    api.create_repo(repo_name)
    with pytest.raises(BadRequestError, match="Commit message of"):
        api.create_commit(
            repo_name,
            [CommitOperationAdd("a.txt", b"a")],
            commit_message="big",
            commit_description="x" * (24 << 20),
        )
    with pytest.raises(BadRequestError, match="Commit title of"):
        api.create_commit(repo_name, [CommitOperationAdd("a.txt", b"a")], commit_message="t" * 1001)
    assert len(api.list_repo_commits(repo_name)) == 1


def test_deleting_a_missing_tag_is_404_and_an_existing_one_403(api, repo_name):
    api.create_repo(repo_name)
    with pytest.raises(RevisionNotFoundError):
        api.delete_tag(repo_name, tag="v9.9")
    api.create_tag(repo_name, tag="v1.0")
    with pytest.raises(HfHubHTTPError) as immutable:
        api.delete_tag(repo_name, tag="v1.0")
    assert immutable.value.response.status_code == 403
