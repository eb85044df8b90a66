"""Environment throughput against raw stepping of the same simulator, in one process.

    python bench/env_throughput.py [--env clevr|metaworld|all] [--steps 20000] [--metaworld-steps 6000]

CLEVR-Robot: env steps/s for the physics push primitive, the gymnasium env with random actions and the env
driven by the scripted behaviour policy, next to raw ``mj_step`` calls/s on the same model. One env step is
``PUSH_SUBSTEPS`` physics substeps, so the "substep efficiency" column is the fraction of raw MuJoCo speed
that survives kalm's Python layers (1.0 = no overhead).

Meta-World: env steps/s of ``kalm/MetaWorld-v0`` over the 10 training tasks (episodes end at success or 100
steps), with random actions and with the scripted experts, next to the raw Meta-World v3 environments stepped
the same way (same tasks, random resets, experts on Meta-World's own 39-d observation). The ratio column is
kalm / raw: the cost of the 91-d mapping, the state-only reward and the expert's 91-d adapter.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator

import mujoco
import numpy as np

from kalm.envs import get_suite
from kalm.envs.clevr.physics import PUSH_SUBSTEPS, ClevrPhysics, sample_positions


def raw_mj_steps_per_second(steps: int) -> float:
    physics = ClevrPhysics()
    rng = np.random.default_rng(0)
    physics.set_positions(sample_positions(rng))
    physics.data.ctrl[:] = 1.0  # the pusher moving, as during a push
    start = time.perf_counter()
    mujoco.mj_step(physics.model, physics.data, nstep=steps * PUSH_SUBSTEPS)
    return steps * PUSH_SUBSTEPS / (time.perf_counter() - start)


def push_steps_per_second(steps: int) -> float:
    physics = ClevrPhysics()
    rng = np.random.default_rng(0)
    actions = rng.integers(40, size=steps)
    start = time.perf_counter()
    for index, action in enumerate(actions):
        if index % 50 == 0:
            physics.set_positions(sample_positions(rng))
        physics.push(int(action))
    return steps / (time.perf_counter() - start)


def env_steps_per_second(steps: int, scripted: bool) -> float:
    suite = get_suite("clevr")
    env = suite.make()
    rng = np.random.default_rng(0)
    policy = suite.behaviour_policy(noise=0.1, rng=rng)
    done, taken, episode = True, 0, 0
    start = time.perf_counter()
    while taken < steps:
        if done:
            observation, info = env.reset(seed=episode)
            episode += 1
        action = policy(observation, info["goal_id"]) if scripted else int(rng.integers(40))
        observation, _, terminated, truncated, info = env.step(action)
        done = terminated or truncated
        taken += 1
    return steps / (time.perf_counter() - start)


def raw_metaworld_steps_per_second(steps: int, expert: bool) -> float:
    """Meta-World's own v3 envs of the training tasks, goal observable, seeded random resets."""
    import warnings

    from metaworld import policies
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS

    from kalm.envs.metaworld.tasks import get_task, task_names

    warnings.filterwarnings("ignore")
    envs, experts = [], []
    for name in task_names("train"):
        env = ALL_V3_ENVIRONMENTS[f"{name}-v3"]()
        env._partially_observable, env._freeze_rand_vec, env.seeded_rand_vec = False, False, True
        env._set_task_called = True
        del env.sawyer_observation_space  # recomputed with the goal in it
        envs.append(env)
        experts.append(getattr(policies, get_task(name).experts[0].policy)())
    rng = np.random.default_rng(0)

    def episode(index: int) -> Iterator[bool]:
        env, policy = envs[index % len(envs)], experts[index % len(envs)]
        env.np_random = np.random.default_rng(index)
        observation, _ = env.reset()
        for _ in range(100):
            action = policy.get_action(observation) if expert else rng.uniform(-1, 1, 4)
            observation, _, _, _, info = env.step(action)
            yield bool(info["success"])

    return _episodes_per_second(episode, steps)


def kalm_metaworld_steps_per_second(steps: int, expert: bool) -> float:
    """``kalm/MetaWorld-v0`` on the training tasks, driven by the suite's behaviour policy without noise."""
    suite = get_suite("metaworld")
    env = suite.make()
    names = [goal.id for goal in suite.goals("train")]
    for name in names:  # build every task's scene before timing
        env.reset(seed=0, options={"goal": name})
    policy = suite.behaviour_policy(noise=0.0, rng=np.random.default_rng(0))
    rng = np.random.default_rng(0)

    def episode(index: int) -> Iterator[bool]:
        name = names[index % len(names)]
        observation, _ = env.reset(seed=index, options={"goal": name})
        for _ in range(100):
            action = policy(observation, name) if expert else rng.uniform(-1, 1, 4).astype(np.float32)
            observation, _, terminated, _, _ = env.step(action)
            yield terminated

    return _episodes_per_second(episode, steps)


def _episodes_per_second(episode: Callable[[int], Iterator[bool]], steps: int) -> float:
    """Steps/s of running episodes until ``steps`` steps; an episode stops at its first success."""
    taken, index = 0, 0
    start = time.perf_counter()
    while taken < steps:
        for success in episode(index):
            taken += 1
            if success or taken >= steps:
                break
        index += 1
    return steps / (time.perf_counter() - start)


def clevr_table(steps: int) -> None:
    raw = raw_mj_steps_per_second(steps)
    rows = [
        ("physics push primitive", push_steps_per_second(steps)),
        ("gymnasium env, random actions", env_steps_per_second(steps, scripted=False)),
        ("gymnasium env, scripted policy", env_steps_per_second(steps, scripted=True)),
    ]
    print(f"CLEVR-Robot, {PUSH_SUBSTEPS} substeps per env step; raw mj_step: {raw:,.0f} calls/s")
    print(f"{'variant':34s} {'env steps/s':>12s} {'substep efficiency':>20s}")
    for name, rate in rows:
        print(f"{name:34s} {rate:12,.0f} {rate * PUSH_SUBSTEPS / raw:20.2f}")


def metaworld_table(steps: int, repeats: int = 3) -> None:
    """Raw and kalm measured alternately, ``repeats`` times each, the best of each kept (shared machines)."""
    print(
        f"Meta-World v3, 10 training tasks, best of {repeats} x {steps:,} steps per cell "
        "(episodes end at success or 100 steps)"
    )
    print(f"{'variant':34s} {'env steps/s':>12s} {'raw steps/s':>12s} {'kalm / raw':>11s}")
    for label, expert in (("random actions", False), ("scripted experts", True)):
        raw = kalm = 0.0
        for _ in range(repeats):
            raw = max(raw, raw_metaworld_steps_per_second(steps, expert))
            kalm = max(kalm, kalm_metaworld_steps_per_second(steps, expert))
        print(f"{'kalm/MetaWorld-v0, ' + label:34s} {kalm:12,.0f} {raw:12,.0f} {kalm / raw:11.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", choices=("clevr", "metaworld", "all"), default="all")
    parser.add_argument("--steps", type=int, default=20_000, help="CLEVR-Robot steps per row")
    parser.add_argument("--metaworld-steps", type=int, default=3_000, help="Meta-World steps per cell")
    args = parser.parse_args()
    if args.env in ("clevr", "all"):
        clevr_table(args.steps)
    if args.env in ("metaworld", "all"):
        metaworld_table(args.metaworld_steps)


if __name__ == "__main__":
    main()
