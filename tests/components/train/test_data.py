"""Train's schedule: batch size and number of steps from the data's size, by a stated rule."""

from __future__ import annotations

import pytest

from edgeship.components.train.data import Schedule, auto_batch_size, schedule


@pytest.mark.parametrize("examples,batch", [(100, 32), (3_000, 32), (10_000, 128),
                                            (50_000, 512), (1_000_000, 512)])
def test_the_batch_grows_with_the_data(examples, batch) -> None:
    assert auto_batch_size(examples) == batch


def test_a_small_split_gets_at_least_min_steps_and_early_stopping_waits_for_them() -> None:
    # 144 photos: 5 steps a pass; 30 passes would be 150 steps, too few to learn. The 100
    # passes are grouped ten to an epoch, so that eval loss is not measured every 5 steps.
    plan = schedule(144, epochs=30, batch_size=0, min_steps=500, max_steps=20_000)
    assert plan == Schedule(batch_size=32, steps_per_epoch=50, epochs=10, min_epochs=10,
                            passes_per_epoch=10)
    assert plan.steps == 500


def test_a_large_split_is_held_to_max_steps() -> None:
    plan = schedule(800_000, epochs=60, batch_size=0, min_steps=500, max_steps=20_000)
    assert plan == Schedule(batch_size=512, steps_per_epoch=1563, epochs=12, min_epochs=1)
    assert plan.steps <= 20_000


def test_one_pass_beyond_the_budget_becomes_a_partial_epoch() -> None:
    plan = schedule(50_000_000, epochs=3, batch_size=512, min_steps=500, max_steps=20_000)
    assert plan == Schedule(batch_size=512, steps_per_epoch=20_000, epochs=1, min_epochs=1)


def test_in_between_the_epochs_asked_for_are_run() -> None:
    plan = schedule(10_000, epochs=30, batch_size=64, min_steps=500, max_steps=20_000)
    assert plan == Schedule(batch_size=64, steps_per_epoch=157, epochs=30, min_epochs=4)


def test_the_schedule_stays_within_its_step_budget_at_every_size() -> None:
    for examples in range(1, 5_000, 7):
        for min_steps, max_steps in ((0, 100), (50, 100), (500, 10_000), (100, 101)):
            plan = schedule(examples, epochs=30, batch_size=0, min_steps=min_steps,
                            max_steps=max_steps)
            assert plan.steps <= max_steps, (examples, min_steps, max_steps, plan)
            assert 0 <= plan.min_epochs <= plan.epochs
            # min_steps is met unless the budget leaves no room for one more epoch
            assert plan.steps >= min(min_steps, max_steps - plan.steps_per_epoch + 1), plan
