"""The evidence behind a blessing, under adversarial inputs (hypothesis): the Wilson interval
and the beats-the-majority rule, and the parameters that switch it."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeship.components.evaluate.evidence import (
    beats_majority,
    class_metrics,
    majority_line,
    wilson_interval,
)
from edgeship.components.evaluate.executor import EvaluateParams
from edgeship.errors import InputError

counts = st.integers(min_value=0, max_value=10**9)


@st.composite
def successes_of(draw: st.DrawFn) -> tuple[int, int]:
    n = draw(counts)
    return draw(st.integers(min_value=0, max_value=n)), n


@given(successes_of())
def test_the_interval_lies_in_0_1_and_holds_its_estimate(kn: tuple[int, int]) -> None:
    k, n = kn
    low, high = wilson_interval(k, n)
    assert 0.0 <= low <= high <= 1.0
    if n:
        assert low <= k / n <= high
    else:
        assert (low, high) == (0.0, 1.0)


@given(successes_of(), st.integers(min_value=2, max_value=1000))
def test_more_examples_at_the_same_accuracy_narrow_the_interval(kn: tuple[int, int],
                                                                 m: int) -> None:
    """Monotone in n: the same share measured on m times the examples is known better."""
    k, n = kn
    low, high = wilson_interval(k, n)
    low_m, high_m = wilson_interval(k * m, n * m)
    assert high_m - low_m <= high - low + 1e-12
    if 0 < k < n:
        assert low_m >= low - 1e-12 and high_m <= high + 1e-12


@given(successes_of())
def test_one_more_right_answer_never_lowers_the_bound(kn: tuple[int, int]) -> None:
    k, n = kn
    if k < n:
        assert wilson_interval(k + 1, n)[0] >= wilson_interval(k, n)[0]


def test_known_values() -> None:
    """Against the closed form (Agresti & Coull 1998): 12 of 12 is [75.8 %, 100 %]."""
    low, high = wilson_interval(12, 12)
    assert low == pytest.approx(12 / (12 + 1.959963984540054**2)) and high == 1.0
    assert wilson_interval(50, 100) == pytest.approx((0.4038, 0.5962), abs=1e-4)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def _matrix(labels: np.ndarray, predicted: np.ndarray, classes: int) -> list[list[int]]:
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix.tolist()


@st.composite
def labels_of(draw: st.DrawFn) -> tuple[np.ndarray, int]:
    classes = draw(st.integers(min_value=2, max_value=5))
    n = draw(st.integers(min_value=1, max_value=400))
    values = draw(st.lists(st.integers(min_value=0, max_value=classes - 1), min_size=n,
                           max_size=n))
    return np.array(values), classes


@settings(max_examples=300)
@given(labels_of(), st.data())
def test_a_constant_answer_is_never_blessed(drawn, data) -> None:
    """Answering one class for every example scores at most the majority share: however many
    eval examples there are, whichever class it answers, it is refused."""
    labels, classes = drawn
    answer = data.draw(st.integers(min_value=0, max_value=classes - 1))
    m = class_metrics(_matrix(labels, np.full_like(labels, answer), classes))
    assert not beats_majority(m)
    present = set(labels.tolist())
    assert m.balanced_accuracy == pytest.approx(1 / len(present) if answer in present else 0.0)


@settings(max_examples=300)
@given(labels_of(), st.data())
def test_no_better_than_the_majority_is_never_blessed(drawn, data) -> None:
    """Any predictions at all (an adversary picks them) whose accuracy is not above the
    majority share are refused; and a refusal holds at any margin."""
    labels, classes = drawn
    predicted = np.array(data.draw(st.lists(st.integers(0, classes - 1), min_size=len(labels),
                                            max_size=len(labels))))
    m = class_metrics(_matrix(labels, predicted, classes))
    lift = data.draw(st.floats(min_value=0.0, max_value=0.99))
    if m.accuracy <= m.majority_share:
        assert not beats_majority(m)
    if not beats_majority(m):
        assert not beats_majority(m, lift)
    assert m.examples == len(labels) and m.correct == int(np.sum(labels == predicted))


@given(labels_of())
def test_perfect_predictions_on_enough_examples_are_blessed(drawn) -> None:
    labels, classes = drawn
    m = class_metrics(_matrix(labels, labels, classes))
    assert m.accuracy == 1.0 and m.macro_f1 == 1.0 and m.balanced_accuracy == 1.0
    # the interval's lower bound n / (n + z^2) must clear the majority share
    assert beats_majority(m) == (len(labels) / (len(labels) + 1.959963984540054**2)
                                 > m.majority_share)


def test_metrics_of_a_known_matrix() -> None:
    """[actual][predicted]: 'ok' 70 right of 76, 'late' 6 right of 24, one class never seen."""
    m = class_metrics([[70, 6, 0], [18, 6, 0], [0, 0, 0]])
    assert (m.examples, m.correct, m.majority_class) == (100, 76, 0)
    assert m.majority_share == 0.76 and m.accuracy == 0.76
    assert m.recall == [70 / 76, 6 / 24, None]
    assert m.balanced_accuracy == pytest.approx((70 / 76 + 6 / 24) / 2)
    f1_ok, f1_late = 2 * 70 / (76 + 88), 2 * 6 / (24 + 12)
    assert m.f1 == [pytest.approx(f1_ok), pytest.approx(f1_late), None]
    assert m.macro_f1 == pytest.approx((f1_ok + f1_late) / 2)
    assert not beats_majority(m)
    line = majority_line(m, ["ok", "late", "lost"], 0.0, False, short=True)
    low, high = wilson_interval(76, 100)
    assert line == (f"accuracy 76.0% [{100 * low:.1f}%, {100 * high:.1f}%] on 100 eval examples "
                    f"does not beat the majority class 'ok' (76.0%)")
    assert math.isclose(sum(m.support), 100)


@given(st.text(max_size=20), st.text(max_size=20))
def test_the_verdict_stays_one_line_whatever_the_class_names(first: str, second: str) -> None:
    m = class_metrics([[3, 1], [2, 4]])
    for ok in (True, False):
        assert "\n" not in majority_line(m, [first, second], 0.0, ok, short=True)
        assert "\r" not in majority_line(m, [first, second], 0.0, ok)


def test_the_check_is_on_unless_turned_off_and_its_parameters_are_checked() -> None:
    assert EvaluateParams().require_beats_majority is True
    assert EvaluateParams().min_lift_over_majority == 0.0
    EvaluateParams(require_beats_majority=False)  # an explicit choice
    for bad in ({"require_beats_majority": 0}, {"require_beats_majority": "false"},
                {"min_lift_over_majority": -0.1}, {"min_lift_over_majority": 1.0},
                {"min_lift_over_majority": float("nan")}, {"min_class_recall": 1.5},
                {"require_beats_majority": False, "min_lift_over_majority": 0.05}):
        with pytest.raises(InputError):
            EvaluateParams(**bad)
