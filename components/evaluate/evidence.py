"""The evidence a blessing needs: does the model beat always answering the commonest class?

A model that answers the eval split's commonest class for every example scores exactly that
class's share (the *majority share*), and on an unbalanced table that share is high (76 % on
time, 95 % not faulty): a plain accuracy threshold of 0, or even 0.7, blesses a model that
learnt nothing. So the blessing asks for evidence that the model does better, counted in eval
examples: the lower bound of a 95 % Wilson score interval on its accuracy must be strictly above
the majority share (plus an optional margin, ``min_lift_over_majority``).

Why this rule (and not Cohen's kappa's lower bound > 0): it is stated in the unit everyone reads
(accuracy) against the number a person can check (the commonest class's share), so a refusal is
one line ("accuracy 76.1 % [75.8, 76.4] on 65,400 eval examples does not beat the majority class
(76.3 %)"); the Wilson interval stays inside [0, 1] and keeps a sensible width at accuracies
near 0 or 1 and on tiny eval sets (12 examples give a wide interval, and so no blessing unless
the model is far above the majority), where the normal approximation does not. The majority
share is taken from the eval split itself: it is the accuracy the best constant answer reaches
on exactly these examples, so no class balance between splits can hide a constant model.

Pure functions of a confusion matrix (rows: actual class, columns: predicted), no TensorFlow:
the executor passes TFMA's matrix; the tests drive them with hypothesis.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from edgeship.contract import shown

#: Two-sided 95 % normal quantile (scipy.stats.norm.ppf(0.975)); written out so that this module
#: needs no scipy.
Z_95 = 1.959963984540054
CONFIDENCE = 0.95


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion ``successes / n``.

    ``n == 0`` says nothing: ``(0.0, 1.0)``. The bounds are clamped to [0, 1] and to the point
    estimate (float rounding near 0 and 1 must not put the estimate outside its own interval).
    """
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    denominator = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))


@dataclass(frozen=True)
class ClassMetrics:
    """What one confusion matrix says, in counts and shares; see :func:`class_metrics`."""

    examples: int
    correct: int
    accuracy: float
    interval: tuple[float, float]
    majority_class: int
    majority_share: float
    balanced_accuracy: float
    macro_f1: float
    support: list[int]
    recall: list[float | None]
    precision: list[float | None]
    f1: list[float | None]


def class_metrics(matrix: Sequence[Sequence[int]]) -> ClassMetrics:
    """Accuracy with its 95 % Wilson interval, the majority share, per-class recall, precision
    and F1, balanced accuracy and macro-F1 from ``matrix[actual][predicted]`` counts.

    Balanced accuracy and macro-F1 average over the classes that have eval examples: a class
    absent from the eval split has no recall to average. A class with examples that is never
    predicted has precision ``None`` and F1 0. With no examples at all every share is 0.
    """
    size = len(matrix)
    counts = [[int(c) for c in row] for row in matrix]
    if any(len(row) != size for row in counts) or any(c < 0 for row in counts for c in row):
        raise ValueError(f"a confusion matrix is square with counts >= 0, got {matrix!r}")
    support = [sum(row) for row in counts]
    predicted = [sum(counts[a][p] for a in range(size)) for p in range(size)]
    n = sum(support)
    correct = sum(counts[i][i] for i in range(size))
    recall = [counts[i][i] / support[i] if support[i] else None for i in range(size)]
    precision = [counts[i][i] / predicted[i] if predicted[i] else None for i in range(size)]
    f1: list[float | None] = []
    for i in range(size):
        if not support[i] and not predicted[i]:
            f1.append(None)
        else:  # 2 TP / (2 TP + FP + FN): 0 when the class is never right
            f1.append(2 * counts[i][i] / (support[i] + predicted[i]))
    present = [i for i in range(size) if support[i]]
    majority = max(range(size), key=lambda i: support[i]) if size else 0
    return ClassMetrics(
        examples=n,
        correct=correct,
        accuracy=correct / n if n else 0.0,
        interval=wilson_interval(correct, n),
        majority_class=majority,
        majority_share=support[majority] / n if n else 0.0,
        balanced_accuracy=(sum(recall[i] or 0.0 for i in present) / len(present)
                           if present else 0.0),
        macro_f1=sum(f1[i] or 0.0 for i in present) / len(present) if present else 0.0,
        support=support,
        recall=recall,
        precision=precision,
        f1=f1,
    )


def beats_majority(m: ClassMetrics, min_lift: float = 0.0) -> bool:
    """True only when the accuracy's 95 % lower bound is strictly above the majority share plus
    ``min_lift``: a model whose accuracy equals the majority share (it answers the commonest
    class, or does no better) never passes, however many eval examples there are."""
    return m.examples > 0 and m.interval[0] > m.majority_share + min_lift


#: The most characters of a class name a verdict shows.
MAX_CLASS_NAME = 200


def class_name(name: object) -> str:
    """A class name as one line of text (a newline in a CSV label is escaped), so the verdict
    stays one line whatever the labels hold."""
    return shown(name, MAX_CLASS_NAME)


def pct(share: float, digits: int = 1) -> str:
    """A share as a percentage with one decimal: ``0.7634 -> '76.3%'``."""
    return f"{100 * share:.{digits}f}%"


def accuracy_phrase(m: ClassMetrics) -> str:
    """``accuracy 76.1% [75.8%, 76.4%] on 65,400 eval examples``: the count is the eval
    examples measured, so 12 reads as 12 and the interval says how much they can tell."""
    low, high = m.interval
    noun = "eval example" if m.examples == 1 else "eval examples"
    return f"accuracy {pct(m.accuracy)} [{pct(low)}, {pct(high)}] on {m.examples:,} {noun}"


def majority_line(m: ClassMetrics, classes: Sequence[str], min_lift: float, ok: bool,
                  short: bool = False) -> str:
    """The beats-the-majority check as one line, passed or failed; ``short`` leaves out the
    bound it was held to (for the one-line verdict)."""
    name = classes[m.majority_class] if m.majority_class < len(classes) else m.majority_class
    target = f"the majority class '{class_name(name)}' ({pct(m.majority_share)})"
    if min_lift:
        target += f" by min_lift_over_majority {pct(min_lift)}"
    line = f"{accuracy_phrase(m)} {'beats' if ok else 'does not beat'} {target}"
    if short:
        return line
    return (f"{line} with {CONFIDENCE:.0%} confidence (the Wilson interval's lower bound "
            f"{pct(m.interval[0], 2)} is {'' if ok else 'not '}above "
            f"{pct(m.majority_share + min_lift, 2)})")


def recall_failures(m: ClassMetrics, classes: Sequence[str], min_recall: float) -> list[str]:
    """One line per class with eval examples whose recall is below ``min_recall`` (0: none)."""
    if min_recall <= 0:
        return []
    lines = []
    for i, recall in enumerate(m.recall):
        if recall is not None and recall < min_recall:
            lines.append(
                f"recall of class '{class_name(classes[i])}' {pct(recall)} "
                f"({round(recall * m.support[i]):,} of {m.support[i]:,} eval examples) is below "
                f"min_class_recall {pct(min_recall)}"
            )
    return lines
