"""Environment throughput against raw MuJoCo stepping of the same model, in one process.

    python bench/env_throughput.py [--steps 20000]

Prints env steps/s for the physics push primitive, the gymnasium env with random actions and the env
driven by the scripted behaviour policy, next to raw ``mj_step`` calls/s on the same CLEVR-Robot model.
One env step is ``PUSH_SUBSTEPS`` physics substeps, so the "substep efficiency" column is the fraction
of raw MuJoCo speed that survives kalm's Python layers (1.0 = no overhead).
"""

from __future__ import annotations

import argparse
import time

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    args = parser.parse_args()
    raw = raw_mj_steps_per_second(args.steps)
    rows = [
        ("physics push primitive", push_steps_per_second(args.steps)),
        ("gymnasium env, random actions", env_steps_per_second(args.steps, scripted=False)),
        ("gymnasium env, scripted policy", env_steps_per_second(args.steps, scripted=True)),
    ]
    print(f"CLEVR-Robot, {PUSH_SUBSTEPS} substeps per env step; raw mj_step: {raw:,.0f} calls/s")
    print(f"{'variant':34s} {'env steps/s':>12s} {'substep efficiency':>20s}")
    for name, rate in rows:
        print(f"{name:34s} {rate:12,.0f} {rate * PUSH_SUBSTEPS / raw:20.2f}")


if __name__ == "__main__":
    main()
