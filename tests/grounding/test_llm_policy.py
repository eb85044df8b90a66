"""The grounded LM as a policy: real states fed back, the environment's judge, the evaluation cases."""

import numpy as np
import pytest
import torch

from kalm.envs.cases import level_cases
from kalm.grounding.policy import evaluate_llm_policy, llm_policy_outcomes


class Recorder:
    """Wraps an environment suite and records every action the policy takes and every state it is shown."""

    def __init__(self, suite):
        self.suite, self.steps = suite, []

    def __getattr__(self, name):
        return getattr(self.suite, name)

    def make(self, **kwargs):
        env, steps = self.suite.make(**kwargs), self.steps
        step = env.step

        def recorded(action):
            result = step(action)
            steps.append((action, result[0]))
            return result

        env.step = recorded
        return env


BALLS = ["red", "blue", "green", "purple", "cyan"]


@pytest.mark.parametrize(
    "layout", [{}, {"state_objects": BALLS}, {"state_objects": BALLS, "object_actions": True}]
)
def test_the_llm_acts_in_the_real_environment_with_real_states_fed_back(clevr, make_model, layout):
    model = make_model(**layout).eval()
    cases = level_cases(clevr, "train", episodes=6, seed=0)
    recorder = Recorder(clevr)
    outcomes = llm_policy_outcomes(model, recorder, cases, batch_size=4)
    assert len(outcomes) == 6 and recorder.steps
    assert all(0 <= int(action) < 40 for action, _ in recorder.steps)
    assert llm_policy_outcomes(model, clevr, cases, batch_size=2) == outcomes  # batching changes nothing

    # the first action is the free-running one the generator picks from the same prompt and state
    env = clevr.make()
    observation, info = env.reset(seed=cases[0].seed, options={"goal": cases[0].goal_id, "level": "train"})
    first = model.generate_rollouts([info["instruction"]], observation[None], horizon=1).actions[0, 0]
    assert int(recorder.steps[0][0]) == int(first)


def test_llm_policy_results_are_per_level_on_the_evaluation_cases(clevr, make_model):
    torch.manual_seed(0)
    results = evaluate_llm_policy(make_model().eval(), clevr, levels=["easy", "hard"], episodes=5, seeds=[1])
    assert set(results) == {"easy", "hard"}
    assert [g for g in results["easy"].goal_ids] == [
        c.goal_id for c in level_cases(clevr, "easy", episodes=5, seed=1)
    ]
    assert results["easy"].interval == "wilson" and results["hard"].episodes == 5
    assert np.isfinite(results["easy"].rate)
