"""A resumed run skips a publishing stage only while the hub still holds what the stage recorded."""

import logging

from kalm.hub.endpoint import hub_api
from kalm.hub.provenance import describe_machine, machine
from kalm.pipeline.report import timings_table
from kalm.pipeline.stages import cached
from kalm.pipeline.state import RunState


def _published(repo_id: str) -> str:
    api = hub_api()
    api.create_repo(repo_id, repo_type="dataset", exist_ok=True)
    return api.upload_file(
        path_or_fileobj=b"rows", path_in_repo="data.txt", repo_id=repo_id, repo_type="dataset"
    ).oid


def _run(state: RunState, produced: list) -> dict:
    def produce() -> dict:
        produced.append(True)
        return {"repo_id": "resume/fresh", "commit": "f" * 40}

    return cached(state, "real_data", "key", produce, repo_type="dataset")


def test_a_recorded_artefact_still_on_the_hub_is_reused(hub, tmp_path):
    record = {"repo_id": "resume/kept", "commit": _published("resume/kept")}
    state = RunState(tmp_path)
    state.record("real_data", "key", record, 1.0)
    produced: list = []
    assert _run(RunState(tmp_path), produced) == record and not produced


def test_a_recorded_artefact_the_hub_lacks_is_produced_again(hub, tmp_path, caplog):
    _published("resume/other-commit")
    for record in (
        {"repo_id": "resume/never-published", "commit": "0" * 40},  # another hub: no such repo
        {"repo_id": "resume/other-commit", "commit": "1" * 40},  # the repo, not that commit
    ):
        RunState(tmp_path).record("real_data", "key", record, 1.0)
        produced: list = []
        with caplog.at_level(logging.WARNING, logger="kalm.pipeline.stages"):
            assert _run(RunState(tmp_path), produced) == {"repo_id": "resume/fresh", "commit": "f" * 40}
        assert produced == [True]
        assert f"recorded {record['repo_id']}@{record['commit'][:12]} is not on this hub" in caplog.text
        assert RunState(tmp_path).done("real_data", "key")["repo_id"] == "resume/fresh"


def test_a_stage_that_publishes_nothing_is_not_checked(tmp_path):
    RunState(tmp_path).record("evaluate", "key", {"results": {}}, 1.0)
    assert cached(RunState(tmp_path), "evaluate", "key", lambda: {"results": None}) == {"results": {}}


def test_a_setting_added_later_keeps_older_run_folders_resumable_while_off():
    from kalm.pipeline.config import CollectConfig
    from kalm.pipeline.stages import _settings_key

    before = {
        "episodes": 2000,
        "noise": 0.1,
        "random_fraction": 0.1,
        "pull": None,
    }  # a run made before hindsight
    assert _settings_key(CollectConfig(2000, 0.1, 0.1)) == before
    assert _settings_key(CollectConfig(2000, 0.1, 0.1, hindsight=2)) == {**before, "hindsight": 2}


def test_each_stage_records_its_machine_and_the_report_says_when_they_differ(tmp_path):
    state = RunState(tmp_path)
    state.record("real_data", "key", {}, 4.0)
    state.record("grounding", "key", {}, 846.0)
    here = RunState(tmp_path).machine("grounding")
    assert here == machine() and here["cpus"] >= 1 and here["torch_threads"] >= 1
    lines = timings_table(RunState(tmp_path))
    assert lines[-1] == f"Machine: {describe_machine(here)}." and "| grounding | 846.0 |" in lines

    # resumed elsewhere: the seconds of the two stages are not comparable, so each names its machine
    state.stages["grounding"]["machine"] = {**here, "cpu": "Other CPU", "cpus": 16}
    lines = timings_table(state)
    assert lines[0] == "| stage | seconds | machine |"
    assert f"| real_data | 4.0 | {describe_machine(here)} |" in lines
    assert any(line.startswith("| grounding | 846.0 | Other CPU, 16 logical CPUs") for line in lines)
