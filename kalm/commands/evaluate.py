"""``kalm evaluate``: success rate of policies per goal level in the real environment, with a report."""

from __future__ import annotations

from pathlib import Path

from kalm.commands import user_error
from kalm.envs import LEVELS
from kalm.errors import KalmError
from kalm.rl.report import EvalReport


def evaluate(
    policies: list[str] | None = None,
    names: list[str] | None = None,
    env: str | None = None,
    levels: list[str] | None = None,
    episodes: int = 200,
    seed: int = 0,
    num_envs: int = 8,
    out: Path = Path("runs/evaluate"),
    hub_endpoint: str | None = None,
    floors: bool = True,
    llm_policy: str | None = None,
    progress: bool = True,
) -> EvalReport:
    """Evaluate policies in the real environment per goal level; write JSON, markdown and a PNG chart.

    Args:
        policies: policy folders or Hub model repos (``namespace/name`` or ``namespace/name@revision``).
        names: display names (default: ``<algorithm>:<folder name>``), e.g. ``[baseline, KALM]``.
        env: environment name (default: the one the first policy was trained on).
        levels: goal levels (default: train, rephrase, easy, hard).
        episodes: episodes per level and policy; cases are fixed by ``seed``.
        seed: seed of the evaluation cases (every policy sees the same cases).
        num_envs: environments stepped in lockstep with one batched forward.
        out: output folder for report.json, report.md and success.png.
        hub_endpoint: Hub URL for repo inputs (default: kalm's endpoint resolution).
        floors: also evaluate the environment's floor policies (``EnvSuite.floor_policies``) on the same
            cases.
        llm_policy: also evaluate this grounded LM (``REPO[@REV]`` or a folder) acting as the policy in the
            real environment (the paper's "LLM as policy"), on the same cases.
        progress: show progress bars.

    Every policy after the first is compared with the first (the paired difference and its interval).
    """
    from kalm.envs import get_suite
    from kalm.rl.evaluation import evaluate_floors, evaluate_policy
    from kalm.rl.goal_encoder import GoalEncoder
    from kalm.rl.policy import load_policy

    if not policies and not llm_policy:
        raise KalmError("nothing to evaluate: give --policies (policy folders or repos) and/or --llm_policy")
    loaded = [load_policy(item, hub_endpoint=hub_endpoint) for item in policies or []]
    names = list(names or [item.name for item in loaded])
    if len(names) != len(loaded):
        raise KalmError(f"{len(names)} names for {len(loaded)} policies; give one name per policy")
    env = env or (loaded[0].env if loaded else None) or "clevr"
    report = EvalReport(
        env,
        settings={
            "episodes": episodes,
            "seed": seed,
            "levels": list(levels or LEVELS),
            "policies": dict(zip(names, policies or [], strict=True)),
        },
        comparisons=[(name, names[0]) for name in names[1:]],
    )
    encoders: dict[str, GoalEncoder] = {}
    for name, item in zip(names, loaded, strict=True):
        encoder = item.encoder(encoders.setdefault(item.goal_encoder, GoalEncoder(item.goal_encoder)))
        report.results[name] = evaluate_policy(
            item.policy,
            env,
            encoder,
            levels=levels or LEVELS,
            episodes=episodes,
            seed=seed,
            num_envs=num_envs,
            progress=progress,
        )
    if llm_policy:
        from kalm.grounding.hub import load_grounded
        from kalm.grounding.policy import LLM_POLICY, evaluate_llm_policy

        report.settings["llm_policy"] = llm_policy
        grounded = load_grounded(llm_policy)
        report.results[LLM_POLICY] = evaluate_llm_policy(
            grounded.model.eval(),
            get_suite(env),
            levels=levels or LEVELS,
            episodes=episodes,
            seeds=[seed],
            progress=progress,
        )
    if floors:
        report.add_floors(
            evaluate_floors(
                get_suite(env),
                levels=levels or LEVELS,
                episodes=episodes,
                seeds=[seed],
                num_envs=num_envs,
                progress=progress,
            )
        )
    paths = report.save(out)
    print(report.to_markdown())
    print(f"report -> {paths['json']}, {paths['markdown']}, {paths['png']}")
    return report


def evaluate_main(argv: list[str] | None = None) -> int:
    """Run ``kalm evaluate --policies [...] [--config FILE]``; returns the exit status."""
    from jsonargparse import CLI

    try:
        CLI(evaluate, args=argv, as_positional=False, prog="kalm evaluate")
    except KalmError as error:
        return user_error(error)
    return 0


main = evaluate_main
