"""End to end: ``kalm run`` on the quick preset against the session's hub server, then a resumed re-run."""

import json
from pathlib import Path

import pytest

from kalm.cli import main
from kalm.pipeline.cli import parse

ROOT = Path(__file__).resolve().parents[2]
PRESETS = sorted((ROOT / "configs/run").glob("*.yaml"))


def test_the_default_preset_is_the_embedded_defaults():  # every preset's own values: tests/test_configs.py
    assert {path.stem for path in PRESETS} >= {"default", "quick"}
    assert parse(["--config", str(ROOT / "configs/run/default.yaml")]) == parse([])


@pytest.mark.timeout(1200)  # four quick runs: ~90 s alone, many times that on a busy machine
def test_quick_pipeline_writes_a_complete_report_and_resumes(hub, tmp_path, capsys):
    argv = [
        "run",
        "--config",
        str(ROOT / "configs/run/quick.yaml"),
        "--out",
        str(tmp_path),
        "--hub_endpoint",
        hub.url,
        "--org",
        "e2e",
        "--evaluate.episodes",
        "12",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "| KALM − baseline |" in printed and "| floor: uniform random |" in printed
    folder = tmp_path / "quick"
    report = (folder / "report.md").read_text()
    for section in (
        "## Success rate per level",
        "## Grounding",
        "## Imaginary data",
        "## Timings",
        "## Imagined rollouts next to the real environment",
    ):
        assert section in report
    for row in (
        "| baseline |",
        "| kalm |",
        "| floor: named ball, random direction |",
        "explanation_accuracy",
        "explanation_slot/direction",
        "action_agreement/easy/direction_within_45°",
        "match_rate/easy",
        "| rephrase | 80 |",
        "hard goals by kind:",
        "2 relations",
        "- easy: one push",
        "replay reaches the goal",
    ):
        assert row in report
    data = json.loads((folder / "report.json").read_text())
    assert set(data["evaluation"]["results"]) == {
        "baseline",
        "kalm",
        "floor: uniform random",
        "floor: named ball, random direction",
        "LLM as policy",
    }
    [comparison] = data["evaluation"]["comparisons"]
    assert (comparison["treated"], comparison["control"]) == ("kalm", "baseline")
    assert comparison["easy"]["ci_low"] <= comparison["easy"]["difference"] <= comparison["easy"]["ci_high"]
    for policy in data["evaluation"]["results"].values():
        assert set(policy) == {"train", "rephrase", "rephrase (unseen phrasings)", "easy", "hard"}
        assert all(result["episodes"] == 12 for result in policy.values())
    assert data["imaginary"]["repo_id"] == "e2e/kalm-clevr-imaginary-tiny-llama"
    assert data["grounding"]["version"] == "v1.0" and data["real"]["version"] == "v1.0"
    assert (folder / "evaluation/success.png").read_bytes()[:4] == b"\x89PNG"
    assert data["figures"] and (folder / data["figures"][0]).read_bytes()[:3] == b"GIF"
    assert {"config.yaml", "provenance.json", "stages.json", "run.log"} <= {p.name for p in folder.iterdir()}
    assert "datamodules.transitions: transitions:" in (folder / "run.log").read_text()  # what each side saw
    stages = json.loads((folder / "stages.json").read_text())
    assert len(stages) == 6

    assert main(argv) == 0  # a re-run with the same config finds every stage done
    log = (folder / "run.log").read_text()
    assert log.count("done before") == 6
    assert json.loads((folder / "stages.json").read_text()) == stages

    # two training seeds per side: only learning and evaluation run again, the report pools both seeds
    assert main([*argv, "--learn.num_seeds", "2"]) == 0
    data = json.loads((folder / "report.json").read_text())
    assert data["evaluation"]["settings"]["seeds"] == [0, 1]
    assert all(
        result["episodes"] == (12 if name == "LLM as policy" else 24)  # the LLM: the first seed's cases
        for name, policy in data["evaluation"]["results"].items()
        for result in policy.values()
    )
    stages_now = json.loads((folder / "stages.json").read_text())
    assert {name for name in stages if stages_now[name] != stages[name]} == {
        "learn_baseline",
        "learn_kalm",
        "evaluate",
    }
    assert [run["seed"] for run in stages_now["learn_kalm"]["output"]["seeds"]] == [0, 1]
    report = (folder / "report.md").read_text()
    assert (
        "12 episodes per level for each of 2 training seeds, each seed on its own cases (24 per policy)"
        in report
    )
    assert "- kalm: train " in report
    results = data["evaluation"]["results"]
    assert results["kalm"]["easy"]["groups"] == [0] * 12 + [1] * 12 == results["baseline"]["easy"]["groups"]
    assert results["kalm"]["easy"]["interval"] == "bootstrap"
    assert results["floor: uniform random"]["easy"]["interval"] == "wilson"

    # the dynamics check: KALM learns from the imaginary rollouts it confirms; the report says how many
    checked = ["--learn.data.imaginary_check", "dynamics", "--learn.data.dynamics.steps", "200"]
    assert main([*argv, *checked]) == 0
    kalm_seed = json.loads((folder / "stages.json").read_text())["learn_kalm"]["output"]["seeds"][0]
    assert set(kalm_seed["check"]) == {"rephrase", "easy", "hard"}
    for counts in kalm_seed["check"].values():
        assert counts["confirmed unsuccessful"] <= counts["labelled unsuccessful"]
    assert "Dynamics check (`imaginary_check: dynamics`)" in (folder / "report.md").read_text()
    assert "dynamics check (an ensemble of 5" in (folder / "run.log").read_text()

    # the paper's protocol: one KALM policy per novel level, the rephrase policy on the training goals
    assert main([*argv, "--learn.policy_protocol", "per_level"]) == 0
    results = json.loads((folder / "report.json").read_text())["evaluation"]["results"]
    assert {"kalm/rephrase", "kalm/easy", "kalm/hard"} <= set(results)
    assert set(results["kalm/easy"]) == {"easy"}
    assert set(results["kalm/rephrase"]) == {"train", "rephrase", "rephrase (unseen phrasings)"}
    assert results["kalm"]["train"] == results["kalm/rephrase"]["train"]
    assert results["kalm"]["hard"] == results["kalm/hard"]["hard"]
    assert "one KALM policy per novel level" in (folder / "report.md").read_text()
