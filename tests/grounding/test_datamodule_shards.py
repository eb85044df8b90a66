"""Grounding batches under DDP: each rank takes its batch of every round of the one-process stream."""

import pytest

from datamodules.rollout_goal import RolloutGoalDataModule, _EpisodeBatches


def _batches(module, shard):
    return [
        [tuple(example.input_ids) for example in batch]
        for batch in _EpisodeBatches(module, validation=False, shard=shard)
    ]


@pytest.mark.parametrize("world", [2, 4])
def test_ranks_split_the_one_process_batches_and_yield_as_many(clevr_real, world):
    module = RolloutGoalDataModule(
        dataset=str(clevr_real), backbone="tiny-llama", batch_size=4, max_episodes=40
    )
    module.setup("fit")
    alone = _batches(module, None)
    rounds = len(alone) // world
    assert len(alone) % world or world == 2  # with 4 ranks this data leaves an incomplete last round
    for rank in range(world):
        mine = _batches(module, (rank, world))
        assert (
            mine == alone[rank : rounds * world : world]
        )  # the one-process batches, split, the tail dropped
