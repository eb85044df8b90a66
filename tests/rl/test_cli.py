"""``kalm learn`` (LightningCLI) and ``kalm evaluate``: configs parse, fit -> policy -> report, Hub trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from kalm.commands.evaluate import evaluate_main
from kalm.commands.learn import learn_main, train_policy

CALLBACKS = [
    {"class_path": "lightning.pytorch.callbacks.ModelCheckpoint", "init_args": {"save_last": True}},
    {
        "class_path": "kalm.rl.callbacks.EvaluationCallback",
        "init_args": {"every_n_steps": 4, "episodes": 1, "levels": ["easy"], "num_envs": 1},
    },
]
CONFIGS = sorted((Path(__file__).parents[2] / "configs" / "learn").glob("*.yaml"))


@pytest.mark.parametrize("config", CONFIGS, ids=lambda path: path.stem)
def test_every_learn_config_parses(config, capsys):
    with pytest.raises(SystemExit) as exit_info:
        learn_main(["fit", "--config", str(config), "--print_config"])
    assert exit_info.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["algorithm"] in config.stem and printed["model"]["gamma"] == 0.99


def tiny_run(tmp_path: Path, real: str, embedding_cache: str, *extra: str) -> list[str]:
    return [
        "fit",
        "--config",
        str(CONFIGS[0].parent / "clevr_bc.yaml"),
        "--data.real.repo_or_path",
        real,
        "--data.embedding_cache",
        embedding_cache,
        "--data.steps_per_epoch",
        "5",
        "--data.batches_per_step",
        "2",
        "--trainer.max_steps",
        "10",
        "--trainer.default_root_dir",
        str(tmp_path),
        "--trainer.logger.init_args.save_dir",
        str(tmp_path),
        "--trainer.enable_progress_bar",
        "false",
        "--model.hidden",
        "[32, 32]",
        "--trainer.log_every_n_steps",
        "1",
        "--trainer.callbacks",
        json.dumps(CALLBACKS),
        *extra,
    ]


def test_learn_fit_writes_policy_and_provenance_then_evaluate_reports(
    tmp_path, clevr_real, embedding_cache, capsys
):
    args = tiny_run(tmp_path, str(clevr_real), embedding_cache)
    assert args[:2] == ["fit", "--config"]
    folder = train_policy(args[2], *args[3:])  # what `kalm learn fit` runs, from Python
    run = tmp_path / "version_0"
    assert folder == run / "policy"
    provenance = json.loads((run / "provenance.json").read_text())
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"train/loss", "train/loss_bc", "eval/success_rate/easy"} <= set(header)  # CSV logger, callback
    assert provenance["inputs"] == [{"repo_or_path": str(clevr_real), "revision": None, "commit": None}]
    assert provenance["steps"] == 10 and "torchrl" in provenance["packages"]
    assert (run / "policy" / "policy.safetensors").exists() and (run / "checkpoints" / "last.ckpt").exists()
    out = tmp_path / "report"
    status = evaluate_main(
        [
            "--policies",
            f"[{run / 'policy'}]",
            "--names",
            "[tiny]",
            "--levels",
            "[easy]",
            "--episodes",
            "4",
            "--out",
            str(out),
            "--progress",
            "false",
        ]
    )
    assert status == 0
    report = json.loads((out / "report.json").read_text())
    assert report["results"]["tiny"]["easy"]["episodes"] == 4 and (out / "success.png").exists()
    assert "| tiny |" in capsys.readouterr().out


def test_user_errors_print_one_line_and_exit_2(tmp_path, clevr_real, embedding_cache, capsys):
    assert learn_main(tiny_run(tmp_path, str(clevr_real), embedding_cache, "--model.algorithm", "sac")) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "kalm: error: unknown offline RL algorithm 'sac'; expected one of bc, cql, iql, td3bc, awac"
    )
    assert evaluate_main(["--policies", f"[{tmp_path / 'nothing'}]", "--progress", "false"]) == 2
    assert "nothing': no such folder (expected a policy folder or a Hub repo" in capsys.readouterr().err


def test_hub_round_trip_data_in_policy_out(tmp_path, clevr_real, embedding_cache):
    """Train from a Hub dataset at a revision, push the policy as a versioned model, evaluate it there."""
    from kalm.hub.datasets import publish_dataset
    from kalm.hub.endpoint import shutdown_local_server
    from kalm.hub.hf_config import use_cache_home
    from kalm.hub.local_server import start_local_server

    server = start_local_server(tmp_path / "store")
    try:
        use_cache_home(tmp_path / "hf-home")
        from kalm.hub.endpoint import ensure_endpoint

        endpoint = ensure_endpoint(server.url, token=server.token)
        published = publish_dataset(clevr_real, "tester/clevr-real", endpoint=endpoint)
        args = tiny_run(
            tmp_path,
            "tester/clevr-real",
            embedding_cache,
            "--data.real.revision",
            published.version,
            "--push_to",
            "tester/clevr-bc",
            "--push_version",
            "v1.0",
            "--hub_endpoint",
            server.url,
        )
        assert learn_main(args) == 0
        provenance = json.loads((tmp_path / "version_0" / "provenance.json").read_text())
        assert provenance["inputs"][0]["commit"] == published.commit
        status = evaluate_main(
            [
                "--policies",
                "[tester/clevr-bc@v1.0]",
                "--levels",
                "[easy]",
                "--episodes",
                "2",
                "--out",
                str(tmp_path / "report"),
                "--hub_endpoint",
                server.url,
                "--progress",
                "false",
            ]
        )
        assert status == 0
    finally:
        shutdown_local_server()
        server.stop()
