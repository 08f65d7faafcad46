"""The data that ships with edgeship, written out on demand (nothing is downloaded).

- ``sensor``: generated three-axis accelerometer recordings of rotating machines in four
  conditions (normal, imbalance, misalignment, bearing_fault); the signal model is in
  docs/data.md. Deterministic for a seed.
- ``vision``: scikit-learn's bundled handwritten digits as ``<digit>/<index>.png`` (8x8 grey).
- ``tabular``: scikit-learn's bundled wine recognition data as one CSV (13 chemical
  measurements, label = cultivar).

``materialize(name, folder)`` writes one of them and returns the file or folder to ingest; the
same call gives byte-identical output on every run, so a pipeline on ``builtin:<name>`` needs no
data upload to run on a cluster.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any, cast

import numpy as np

from edgeship.components.ingest._rows import in_eval

log = logging.getLogger(__name__)

BUILTIN_PREFIX = "builtin:"
NAMES = ("sensor", "vision", "tabular")
KIND = {"sensor": "sensor", "vision": "image", "tabular": "tabular"}
# Ingest parameters the bundled data needs when the caller leaves them empty.
DEFAULTS: dict[str, dict[str, Any]] = {
    "sensor": {"group_column": "machine_id", "time_column": "time"},
    # the 8x8 digits upscaled: the bundled CNN's stem strides by 2 from 16 pixels on
    "image": {"image_size": 16},
    "tabular": {},
}

SENSOR_CLASSES = ("normal", "imbalance", "misalignment", "bearing_fault")
SAMPLE_RATE = 1000.0  # Hz
SENSOR_COLUMNS = ("machine_id", "time", "ax", "ay", "az", "label")
DEFAULT_EVAL_RATIO = 0.2  # ingest's default; the bundled recordings are stratified for it


def materialize(name: str, folder: str | Path, seed: int = 0) -> Path:
    """Write bundled dataset ``name`` under ``folder``; return the CSV file or image folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if name == "sensor":
        return write_sensor_csv(folder / "sensor.csv", seed=seed)
    if name == "vision":
        return write_digits(folder / "digits")
    if name == "tabular":
        return write_wine_csv(folder / "wine.csv")
    raise ValueError(f"unknown bundled dataset '{name}'; use one of {NAMES}")


# --- sensor ---------------------------------------------------------------------------------


def sensor_recording(
    condition: str, rng: np.random.Generator, samples: int, rate: float = SAMPLE_RATE
) -> np.ndarray:
    """One recording, shape [samples, 3] (ax, ay radial; az axial), in g.

    Every machine turns at its own speed with a slow drift and jitter; faults add the
    components a vibration analyst looks for (see docs/data.md for the model and its ranges).
    """
    t = np.arange(samples) / rate
    speed = rng.uniform(18.0, 45.0)  # shaft speed, Hz (1080-2700 rpm)
    drift = rng.uniform(-0.04, 0.04)  # relative speed change over the recording
    wander = np.cumsum(rng.normal(0.0, 0.002, samples))  # slow random speed wander
    shaft_hz = speed * (1.0 + drift * t / t[-1] + wander / np.sqrt(samples))
    phase = 2 * np.pi * np.cumsum(shaft_hz) / rate + rng.uniform(0, 2 * np.pi)

    def harmonic(order: int, amplitude: float, offset: float = 0.0) -> np.ndarray:
        return amplitude * np.sin(order * phase + offset)

    signal = np.zeros((samples, 3))
    # Every machine: a little residual imbalance, a weak 2x, broadband noise.
    residual = rng.uniform(0.02, 0.06)
    signal[:, 0] += harmonic(1, residual)
    signal[:, 1] += harmonic(1, residual, np.pi / 2)
    signal[:, :2] += harmonic(2, rng.uniform(0.0, 0.02))[:, None]
    if condition == "imbalance":
        # A heavy spot is a force rotating at 1x: strong radial 1x, 90 degrees apart in x/y.
        force = rng.uniform(0.25, 0.6)
        signal[:, 0] += harmonic(1, force)
        signal[:, 1] += harmonic(1, force * rng.uniform(0.7, 1.0), np.pi / 2)
        signal[:, 2] += harmonic(1, force * rng.uniform(0.02, 0.08))
    elif condition == "misalignment":
        # Angular/parallel misalignment: strong 2x radial and large axial 1x and 2x.
        level = rng.uniform(0.15, 0.35)
        signal[:, 0] += harmonic(2, level) + harmonic(1, level * 0.4)
        signal[:, 1] += harmonic(2, level * rng.uniform(0.6, 1.0), np.pi / 3)
        signal[:, 2] += harmonic(1, level * rng.uniform(0.7, 1.2)) + harmonic(2, level * 0.8)
        signal[:, 2] += harmonic(3, level * rng.uniform(0.1, 0.3))
    elif condition == "bearing_fault":
        signal += _bearing_impacts(phase, rng, rate)
    elif condition != "normal":
        raise ValueError(f"unknown condition '{condition}'")
    signal += rng.normal(0.0, rng.uniform(0.02, 0.05), (samples, 3))  # sensor + process noise
    gain = rng.uniform(0.95, 1.05, 3)  # sensor calibration spread
    offset = rng.normal(0.0, 0.03, 3) + np.array([0.0, 0.0, 1.0])  # bias; z carries gravity
    return signal * gain + offset


def _bearing_impacts(phase: np.ndarray, rng: np.random.Generator, rate: float) -> np.ndarray:
    """An outer-race defect: each ball pass strikes it, ringing a structural resonance.

    Impacts come at the ball-pass frequency (a geometry factor of 3-5 times shaft speed) with
    1-2 % random slip, and excite a decaying high-frequency resonance (2-4.5 kHz scaled down to
    the 1 kHz sample rate: 220-420 Hz) mostly in the radial axes.
    """
    samples = phase.shape[0]
    bpfo_order = rng.uniform(3.0, 5.0)
    resonance = rng.uniform(220.0, 420.0)
    decay = rng.uniform(60.0, 140.0)  # 1/s
    strength = rng.uniform(0.3, 0.8)
    balls_passed = phase / (2 * np.pi) * bpfo_order  # monotonic: the shaft never reverses
    ring_t = np.arange(int(rate * 0.03)) / rate
    ring = np.exp(-decay * ring_t) * np.sin(2 * np.pi * resonance * ring_t)
    out = np.zeros((samples, 3))
    ball = balls_passed[0] + rng.uniform(0, 1)
    while ball < balls_passed[-1]:
        at = int(np.searchsorted(balls_passed, ball))
        span = min(ring.shape[0], samples - at)
        amp = strength * rng.uniform(0.7, 1.3)
        out[at : at + span, 0] += amp * ring[:span]
        out[at : at + span, 1] += 0.6 * amp * ring[:span]
        out[at : at + span, 2] += 0.15 * amp * ring[:span]
        ball += 1.0 + rng.normal(0.0, 0.015)  # slip: rolling elements do not roll perfectly
    return out


def sensor_rows(
    recordings: int = 64, samples: int = 512, seed: int = 0
) -> list[tuple[str, float, float, float, float, str]]:
    """All rows of the bundled sensor CSV: ``recordings`` machines, balanced over classes.

    Conditions are dealt round-robin, first to the machines that ingest's default split
    (eval_ratio 0.2) sends to eval, then to the rest, so every class has the same number of
    machines overall and about equal numbers in each split: a stratified split, as a curated
    dataset would ship it.
    """
    rng = np.random.default_rng(seed)
    machines = [f"machine-{number:02d}" for number in range(recordings)]
    order = list(SENSOR_CLASSES)
    rng.shuffle(order)
    eval_first = sorted(machines, key=lambda m: not in_eval(m, DEFAULT_EVAL_RATIO))
    condition = {m: order[i % len(order)] for i, m in enumerate(eval_first)}
    rows = []
    for machine in machines:
        data = sensor_recording(condition[machine], rng, samples)
        for i, (ax, ay, az) in enumerate(data):
            rows.append((machine, i / SAMPLE_RATE, ax, ay, az, condition[machine]))
    return rows


def write_sensor_csv(path: Path, recordings: int = 64, samples: int = 512, seed: int = 0) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(SENSOR_COLUMNS)
        for machine, time, ax, ay, az, label in sensor_rows(recordings, samples, seed):
            writer.writerow([machine, f"{time:.3f}", f"{ax:.5f}", f"{ay:.5f}", f"{az:.5f}", label])
    log.info("wrote %s (%d recordings of %d samples)", path, recordings, samples)
    return path


# --- vision ---------------------------------------------------------------------------------


def write_digits(folder: Path) -> Path:
    """scikit-learn's 1797 8x8 digits (values 0..16) as grey PNGs scaled to 0..255."""
    from PIL import Image
    from sklearn.datasets import load_digits
    from sklearn.utils import Bunch

    # a Bunch unless return_X_y is set; scikit-learn types every call as either
    digits = cast(Bunch, load_digits())
    for index, (image, target) in enumerate(zip(digits.images, digits.target, strict=True)):
        target_dir = folder / str(int(target))
        target_dir.mkdir(parents=True, exist_ok=True)
        pixels = np.round(image * (255.0 / 16.0)).astype(np.uint8)
        Image.fromarray(pixels, mode="L").save(target_dir / f"{index:04d}.png")
    log.info("wrote %d digit images under %s", len(digits.target), folder)
    return folder


# --- tabular --------------------------------------------------------------------------------


def write_wine_csv(path: Path) -> Path:
    """scikit-learn's wine data (178 wines, 3 cultivars) with a ``label`` column of class names.

    Column names are made identifier-safe (``od280/od315_of_diluted_wines`` has a slash) so
    that they work as feature names in every later step.
    """
    from sklearn.datasets import load_wine
    from sklearn.utils import Bunch

    wine = cast(Bunch, load_wine())  # a Bunch, as load_digits above
    names = [n.replace("/", "_") for n in wine.feature_names]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow([*names, "label"])
        for values, target in zip(wine.data, wine.target, strict=True):
            writer.writerow([*(f"{v:g}" for v in values), wine.target_names[target]])
    log.info("wrote %s (%d rows)", path, len(wine.target))
    return path
