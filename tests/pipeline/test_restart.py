"""``kalm run`` grounds again under a new seed when a grounding stalls at chance, and a resumed run skips the
attempts it abandoned."""

import json
from pathlib import Path

import pytest

from datamodules.mixing import seed_from
from kalm.cli import main
from kalm.errors import KalmError
from kalm.grounding.health import GroundingStalled
from kalm.pipeline import stages
from kalm.pipeline.cli import parse

ROOT = Path(__file__).resolve().parents[2]
QUICK = str(ROOT / "configs/run/quick.yaml")


def _stalls_until(good_seed: int, calls: list):
    """A grounding fit that stalls at chance under every seed but ``good_seed``, as the Trainer would leave
    its folder (logs written before the validation that stopped it)."""

    def fit(config, suite, real, folder, seed, stalled):
        calls.append((folder, seed))
        (folder / "logs").mkdir(parents=True, exist_ok=True)
        if seed != good_seed:
            raise GroundingStalled(400, 3.69, 3.6889)
        return {"seed": seed, "stalled": list(stalled)}

    return fit


def test_a_stalled_attempt_is_grounded_again_under_a_new_seed_and_skipped_on_resume(tmp_path, monkeypatch):
    config = parse(["--config", QUICK, "--seed", "7", "--ground.restarts", "2"])
    second = seed_from(7, 1) % 2**32
    calls: list = []
    monkeypatch.setattr(stages, "_fit_grounding_once", _stalls_until(second, calls))
    record = stages._fit_grounding(config, None, {}, tmp_path)
    assert calls == [(tmp_path, 7), (tmp_path / "restart-1", second)]
    assert record["seed"] == second
    assert record["stalled"] == [{"seed": 7, "step": 400, "action_loss": 3.69, "chance": 3.6889}]
    assert json.loads((tmp_path / "stalled.json").read_text())["seed"] == 7
    assert not (tmp_path / "restart-1" / "stalled.json").exists()

    calls.clear()  # resumed: the abandoned attempt is not fitted again, and is still reported
    assert stages._fit_grounding(config, None, {}, tmp_path) == record
    assert calls == [(tmp_path / "restart-1", second)]


def test_when_every_attempt_stalls_the_run_stops_with_one_line(tmp_path, monkeypatch):
    config = parse(["--config", QUICK, "--ground.restarts", "1"])
    calls: list = []
    monkeypatch.setattr(stages, "_fit_grounding_once", _stalls_until(-1, calls))
    expected = r"stalled in all 2 attempt\(s\): .*3\.690 \(seed 0\), 3\.690"
    with pytest.raises(KalmError, match=expected) as caught:
        stages._fit_grounding(config, None, {}, tmp_path)
    assert "\n" not in str(caught.value) and len(calls) == 2
    calls.clear()
    with pytest.raises(KalmError, match="stalled in all 2 attempt"):  # resumed: nothing is fitted again
        stages._fit_grounding(config, None, {}, tmp_path)
    assert calls == []
    with pytest.raises(KalmError, match="ground.restarts"):
        parse(["--config", QUICK, "--ground.restarts", "-1"])


@pytest.mark.timeout(900)
def test_the_guard_stops_a_real_grounding_at_chance(hub, tmp_path, capsys):
    """The quick preset's tiny random model is still at chance after 20 steps: the guard in a real Lightning
    fit stops both attempts, and ``kalm run`` exits with the one-line error."""
    argv = [
        "run",
        "--config",
        QUICK,
        "--out",
        str(tmp_path),
        "--hub_endpoint",
        hub.url,
        "--org",
        "stall",
        "--collect.episodes",
        "60",
        "--ground.stall_check",
        "true",
        "--ground.trainer.max_steps",
        "20",
        "--ground.trainer.val_check_interval",
        "20",
    ]
    assert main(argv) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "grounding stalled in all 2 attempt(s)" in error
    [marker] = (tmp_path / "quick" / "ground").glob("*/stalled.json")
    assert json.loads(marker.read_text())["step"] == 20
    assert (marker.parent / "restart-1" / "stalled.json").exists()


def test_the_report_names_the_abandoned_attempts_and_the_seed_that_grounded():
    from kalm.pipeline.report import stalled_lines

    assert stalled_lines({"seed": 0, "stalled": []}) == [] == stalled_lines({})
    stalled = [{"seed": 0, "step": 400, "action_loss": 3.6912, "chance": 3.6889}]
    [line, blank] = stalled_lines({"seed": 1234, "stalled": stalled})
    assert line.startswith("**1 grounding attempt(s) stalled at chance** (ln of the action count: 3.689)")
    assert "seed 0: validation action loss 3.691 at step 400" in line and line.endswith("seed 1234.")
    assert blank == ""
