"""The built-in dataset: synthetic OSDB release files (JSON) and their flattened CSV.

OSDB itself needs a data-sharing agreement, so tests and the default run use events generated
here in the same formats. Each event is 3 minutes (36 datapoints of 125 samples at 25 Hz) of 3D
wrist acceleration in milli-g around 1 g of gravity, with wrist-orientation changes that rotate
the gravity vector. The generator is deliberately varied, so that a model has to learn seizures
rather than one generator's fingerprint:
- NDA: rest, walking, typing, gesturing, tooth brushing, cycling, riding in a vehicle.
- False alarms (confounders): tooth brushing, hand washing, shaking, rocking, vehicle vibration,
  clapping, running, cycling, shivering, a watch being handled.
- Seizures in four morphology families (``FAMILIES``; the family is in ``desc``, the OSDB-style
  name in ``subType``): ``tonic-clonic`` (a 5-15 s tonic phase of stiff 8-11 Hz tremor, then
  60-130 s of clonic jerks slowing from 4.5-7 Hz to 1.3-2.5 Hz), ``short-tonic-clonic`` (20-45 s,
  tonic phase in half of them), ``clonic`` (no tonic phase, 25-90 s of jerks at a steady 1.5-4 Hz)
  and ``hypermotor`` (15-60 s of large irregular 0.5-3 Hz flailing). Rate trajectories (geometric,
  linear, plateau then slowing), amplitude envelopes (decaying, crescendo-decrescendo, flat), jerk
  shapes and the movement axis (a random mix of the gravity direction and a perpendicular one,
  which sets how much shows in the magnitude) vary per event. Heart rate rises and SpO2 dips;
  seizureTimes is the main phase in seconds from the event dataTime.
- Sensors vary per user and event: gain (+-8 %), per-axis offset (+-40 mg), noise floor
  (2-20 mg) and 25 Hz clock drift (+-2 %): signals are made on the true time axis and resampled
  where the drifting clock samples them.
Each datapoint's specPower / roiPower / simpleSpec / alarmState come from a simple OSD-style
spectral rule (3-8 Hz power against 1-12.5 Hz power, alarm after two consecutive datapoints).
A few events carry OSDB's quirks (no heart rate, o2Sat -1, no 3D data, zero-padded or short
rawData) so that every flatten path is exercised. Output is byte-identical for a given seed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

from deepepi.core.constants import SAMPLE_FREQ_HZ as FS
from deepepi.core.constants import SAMPLES_PER_DATAPOINT as SAMPLES
from deepepi.data.osdb import FlattenStats, flatten, iter_events
from deepepi.core.io import atomic_path, write_json

DATAPOINTS = 36
N = SAMPLES * DATAPOINTS
CSV_NAME = "allData.csv"
FILES = {"Seizure": "osdb_3min_allSeizures.json", "False Alarm": "osdb_3min_falseAlarms.json",
         "NDA": "osdb_3min_ndaEvents.json"}
GENERATOR_VERSION = 4      # bump when the generated signals change, so cached datasets are remade
MANIFEST_NAME = "dataset.json"
DEFAULT_SEED = 1
DEFAULT_USERS = 8
DEFAULT_EVENTS = 400
SEIZURE_SHARE = 0.15
FALSE_ALARM_SHARE = 0.30
# OSD-style spectral alarm rule on one datapoint (5 s) of magnitude.
ROI_HZ = (3.0, 8.0)
SPEC_HZ = (1.0, FS / 2)
ALARM_POWER = 500.0       # ROI power (mg^2; a 3-8 Hz sinusoid of ~45 mg amplitude)
ALARM_RATIO = 0.5         # share of 1-12.5 Hz power inside the ROI
_EPOCH = datetime(2023, 1, 1, tzinfo=timezone.utc)
_FA_KINDS = ("Brushing teeth", "Washing hands", "Shaking", "Rocking", "Motor vehicle", "Clapping", "Running",
             "Cycling", "Shivering", "Handling watch")
FAMILIES = ("tonic-clonic", "short-tonic-clonic", "clonic", "hypermotor")
FAMILY_SUBTYPES = {"tonic-clonic": "Tonic-Clonic", "short-tonic-clonic": "Tonic-Clonic", "clonic": "Clonic",
                   "hypermotor": "Hypermotor"}
_JERK_KERNELS = (np.array([0.4, 1.0, 0.3, -0.6, -0.4, -0.1]), np.array([1.0, -0.8, -0.2]),
                 np.array([0.2, 0.6, 1.0, 0.5, -0.3, -0.6, -0.3, -0.1]))
_NDA_KINDS = ("Resting", "Walking", "Typing", "Gesturing", "Brushing teeth", "Cycling", "Motor vehicle")
_SOURCES = ("Garmin", "BLE", "Pebble")


@dataclass(frozen=True)
class SynthResult:
    """Paths written by ``synthesize`` and what flattening them kept."""

    json_paths: tuple[Path, ...]
    csv_path: Path
    stats: FlattenStats


@dataclass(frozen=True)
class Mix:
    """What share of the events are seizures and false alarms, and which seizure families occur.

    The default is the built-in dataset's mix. Tests that need a tiny model to separate the classes
    ask for more seizures, fewer confounders or fewer families; every event is still generated alike.
    """

    seizure_share: float = SEIZURE_SHARE
    false_alarm_share: float = FALSE_ALARM_SHARE
    families: tuple[str, ...] = FAMILIES

    def __post_init__(self) -> None:
        if not (0 < self.seizure_share and 0 < self.false_alarm_share
                and self.seizure_share + self.false_alarm_share < 1):
            raise ValueError(f"need positive seizure and false-alarm shares summing below 1, got "
                             f"{self.seizure_share} and {self.false_alarm_share}")
        if not self.families or not set(self.families) <= set(FAMILIES):
            raise ValueError(f"families must be a non-empty subset of {FAMILIES}, got {self.families}")


@dataclass(frozen=True)
class _User:
    user_id: int
    noise: float          # sensor noise floor sigma, mg
    gravity: float        # reported 1 g, mg
    gain: float           # sensor gain error factor
    offset: tuple[float, float, float]  # per-axis zero-g offset, mg
    drift: float          # 25 Hz clock error: the watch records every 1 + drift true samples
    intensity: float      # activity amplitude factor
    hr_rest: float
    o2_rest: float
    source: str


def _unit(rng: np.random.Generator, size: int | None = None) -> np.ndarray:
    v = rng.normal(size=(3,) if size is None else (size, 3))
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _smooth_noise(rng: np.random.Generator, n: int, cutoff_hz: float) -> np.ndarray:
    """Unit-std noise band-limited below ``cutoff_hz`` (FFT mask), shape [n].

    Made at least 20 s long and cut, so that short segments keep the same statistics.
    """
    m = max(n, 20 * FS)
    spec = np.fft.rfft(rng.normal(size=m))
    spec[np.fft.rfftfreq(m, 1 / FS) > cutoff_hz] = 0
    x = np.fft.irfft(spec, m)
    return (x / x.std())[:n]


def _rhythm(rng: np.random.Generator, n: int, f0: float, wander: float, harmonic: float) -> np.ndarray:
    """Rhythmic movement whose rate wanders by ``wander`` Hz around ``f0``, shape [n]."""
    freq = f0 + wander * _smooth_noise(rng, n, 0.2)
    phase = 2 * np.pi * np.cumsum(freq) / FS + rng.uniform(0, 2 * np.pi)
    return np.sin(phase) + harmonic * np.sin(2 * phase + rng.uniform(0, 2 * np.pi))


def _along(signal: np.ndarray, rng: np.random.Generator, spread: float = 0.3) -> np.ndarray:
    """Project a 1-D movement onto a random wrist axis with some cross-axis leakage, [n, 3]."""
    return signal[:, None] * (_unit(rng) + spread * _unit(rng))


def _bursts(rng: np.random.Generator, n: int, on_s: tuple[float, float], off_s: tuple[float, float]) -> np.ndarray:
    """A 0/1 envelope of bursts, edges softened over 0.2 s, shape [n]."""
    lengths = []
    total, on = 0, True
    while total < n:
        span = int(rng.uniform(*(on_s if on else off_s)) * FS)
        lengths.append((span, on))
        total += span
        on = not on
    env = np.concatenate([np.full(s, float(o)) for s, o in lengths])[:n]
    return np.convolve(env, np.ones(5) / 5, mode="same")


def _activity(kind: str, rng: np.random.Generator, n: int, user: _User) -> np.ndarray:
    """Dynamic acceleration [n, 3] in mg for a daily activity (NDA, or a false alarm's cause)."""
    a = user.intensity
    if kind == "Resting":
        return _along(5 * a * _smooth_noise(rng, n, 0.5), rng)
    if kind == "Walking":
        step = rng.uniform(1.7, 2.2)
        return (_along(rng.uniform(120, 250) * a * _rhythm(rng, n, step, 0.05, 0.5), rng)
                + _along(rng.uniform(80, 180) * a * _rhythm(rng, n, step / 2, 0.03, 0.2), rng))
    if kind == "Typing":
        taps = (rng.random(n) < 5 / FS) * rng.uniform(20, 60, n) * a
        taps = np.convolve(taps, [1.0, -0.5, 0.2], mode="same")
        return _along(taps, rng, 0.6) + _along(15 * a * _smooth_noise(rng, n, 1.0), rng)
    if kind == "Gesturing":
        return (_along(rng.uniform(50, 150) * a * _smooth_noise(rng, n, 2.0), rng)
                + _along(30 * a * _smooth_noise(rng, n, 1.0), rng))
    if kind == "Brushing teeth":
        env = _bursts(rng, n, (2, 5), (1, 3))
        return _along(rng.uniform(150, 300) * a * env * _rhythm(rng, n, rng.uniform(4, 5), 0.2, 0.3), rng)
    if kind == "Washing hands":
        return _along(rng.uniform(120, 280) * a * _rhythm(rng, n, rng.uniform(3, 5), 0.4, 0.4), rng, 0.6)
    if kind == "Shaking":
        return _along(rng.uniform(150, 400) * a * _rhythm(rng, n, rng.uniform(4, 7), 0.3, 0.2), rng)
    if kind == "Rocking":
        return _along(rng.uniform(100, 250) * a * _rhythm(rng, n, rng.uniform(3, 4), 0.15, 0.3), rng)
    if kind == "Motor vehicle":
        bumps = (rng.random(n) < 0.5 / FS) * rng.uniform(100, 300, n)
        return (_along(rng.uniform(60, 150) * _rhythm(rng, n, rng.uniform(5, 8), 0.8, 0.5), rng)
                + _along(np.convolve(bumps, np.hanning(7), mode="same"), rng))
    if kind == "Clapping":
        rate = np.full(n, rng.uniform(2.0, 4.0))
        claps = np.convolve((np.diff(np.floor(np.cumsum(rate) / FS), prepend=0) > 0) * rng.uniform(300, 900) * a,
                            [1.0, -0.7, 0.3, -0.1], mode="same")
        return _along(claps * _bursts(rng, n, (3, 12), (2, 8)), rng, 0.3)
    if kind == "Running":
        step = rng.uniform(2.5, 3.2)
        return (_along(rng.uniform(300, 800) * a * _rhythm(rng, n, step, 0.08, 0.6), rng)
                + _along(rng.uniform(200, 500) * a * _rhythm(rng, n, step / 2, 0.04, 0.3), rng))
    if kind == "Cycling":
        cadence = rng.uniform(1.0, 1.6)
        road = rng.uniform(10, 40) * _smooth_noise(rng, n, 12.0)
        return _along(rng.uniform(40, 120) * a * _rhythm(rng, n, cadence, 0.1, 0.4), rng) + _along(road, rng, 0.8)
    if kind == "Shivering":
        amp = rng.uniform(30, 120) * a * (0.6 + 0.4 * np.abs(_smooth_noise(rng, n, 0.2)))
        return _along(amp * _rhythm(rng, n, rng.uniform(5, 10), 1.0, 0.2), rng, 0.7)
    if kind == "Handling watch":
        knocks = (rng.random(n) < 1.5 / FS) * rng.uniform(200, 1200, n)
        return (_along(np.convolve(knocks, [0.5, 1.0, -0.8, 0.2], mode="same"), rng, 1.0)
                + _along(rng.uniform(100, 400) * _smooth_noise(rng, n, 3.0), rng, 1.0))
    raise ValueError(f"unknown activity {kind!r}")


def _daily(rng: np.random.Generator, n: int, user: _User, kinds: tuple[str, ...] = _NDA_KINDS[:5]) -> np.ndarray:
    """Consecutive NDA activities filling [n, 3]."""
    count = int(rng.integers(0, 3))
    cuts = np.unique(rng.integers(1, n // FS, size=count) * FS) if n >= 2 * FS else np.empty(0, np.int64)
    bounds = np.concatenate([[0], cuts, [n]])  # whole seconds apart: no segment under 1 s
    return np.concatenate([_activity(str(rng.choice(kinds)), rng, int(hi - lo), user)
                           for lo, hi in zip(bounds[:-1], bounds[1:])])


def _jerks(rng: np.random.Generator, rate: np.ndarray, amp: np.ndarray) -> np.ndarray:
    """A train of muscle jerks at the instantaneous ``rate`` (Hz), each a short biphasic pulse, [n]."""
    n = len(rate)
    cycles = np.cumsum(rate) / FS + rng.uniform(0, 1)
    jerk = np.zeros(n)
    at = np.flatnonzero(np.diff(np.floor(cycles), prepend=np.floor(cycles[0])) > 0)
    jerk[at] = amp[at] * rng.uniform(0.7, 1.3, at.size)
    kernel = _JERK_KERNELS[int(rng.integers(len(_JERK_KERNELS)))]
    return np.convolve(jerk, kernel, mode="same")


def _envelope(rng: np.random.Generator, n: int) -> np.ndarray:
    """Amplitude course of a clonic phase: decaying, crescendo-decrescendo or flat, [n]."""
    t = np.arange(n) / max(n - 1, 1)
    shape = int(rng.integers(3))
    if shape == 0:
        return np.linspace(1.0, rng.uniform(0.4, 0.8), n)
    if shape == 1:
        peak = rng.uniform(0.2, 0.6)
        return 0.35 + 0.65 * np.where(t < peak, t / peak, (1 - t) / (1 - peak) * 0.8 + 0.2)
    return np.full(n, 1.0) * (1 + 0.1 * _smooth_noise(rng, n, 0.3))


def _trajectory(rng: np.random.Generator, n: int, f0: float, f1: float) -> np.ndarray:
    """Clonic rate from f0 to f1 Hz: geometric slowing, linear slowing, or a plateau then slowing, [n]."""
    t = np.arange(n) / max(n, 1)
    kind = int(rng.integers(3))
    if kind == 0:
        return f0 * (f1 / f0) ** t
    if kind == 1:
        return f0 + (f1 - f0) * t
    knee = rng.uniform(0.4, 0.7)
    return np.where(t < knee, f0, f0 + (f1 - f0) * (t - knee) / (1 - knee))


def _limb_axis(rng: np.random.Generator, down: np.ndarray) -> np.ndarray:
    """The movement axis: a random mix of the gravity direction and a perpendicular one.

    Movement along gravity shows fully in the magnitude; perpendicular movement only weakly, so the
    mix sets how visible a seizure is to a magnitude-only detector.
    """
    g = down / np.linalg.norm(down)
    perp = _unit(rng)
    perp = perp - perp.dot(g) * g
    perp /= max(np.linalg.norm(perp), 1e-9)
    a = rng.uniform(0.55, 1.0)
    axis = a * g + np.sqrt(1 - a * a) * perp
    return axis / np.linalg.norm(axis)


def _clonic(rng: np.random.Generator, n: int, user: _User, down: np.ndarray, *, f0: tuple[float, float],
            f1: tuple[float, float], amp: tuple[float, float]) -> np.ndarray:
    """Clonic jerks with a family's rate trajectory and a random envelope, [n, 3] mg."""
    rate = _trajectory(rng, n, rng.uniform(*f0), rng.uniform(*f1)) * (1 + 0.05 * _smooth_noise(rng, n, 0.3))
    amplitude = rng.uniform(*amp) * user.intensity * _envelope(rng, n)
    main = _jerks(rng, rate, amplitude)
    side = _jerks(rng, rate, amplitude * rng.uniform(0.1, 0.4))
    return main[:, None] * _limb_axis(rng, down) + _along(side, rng, 0.3)


def _tonic(rng: np.random.Generator, n: int) -> np.ndarray:
    """Stiff tonic phase: low-amplitude 8-11 Hz tremor rising in amplitude, [n, 3] mg."""
    amp = rng.uniform(20, 60) * np.linspace(0.5, 1.0, n)
    return _along(amp * _rhythm(rng, n, rng.uniform(8, 11), 0.5, 0.1), rng, 0.5)


def _hypermotor(rng: np.random.Generator, n: int, user: _User) -> np.ndarray:
    """Hypermotor seizure: large, irregular 0.5-3 Hz flailing in changing directions, [n, 3] mg."""
    amp = rng.uniform(300, 800) * user.intensity
    out = np.zeros((n, 3))
    for _ in range(3):
        out += _along(amp / 2 * _smooth_noise(rng, n, rng.uniform(1.5, 3.0)), rng, 0.5)
    bursts = _bursts(rng, n, (2, 6), (0.5, 2))
    return out * (0.4 + 0.6 * bursts[:, None])


def _seizure(rng: np.random.Generator, family: str, onset: int, user: _User,
             down: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Dynamic acceleration [n, 3] of one seizure event of ``family`` starting at sample ``onset``
    (n = len(down)), with the start and the end of its main (clonic or hypermotor) phase."""
    n = len(down)
    dyn = np.zeros((n, 3))
    dyn[:onset] = _daily(rng, onset, user, ("Resting", "Gesturing", "Typing"))
    tonic_len = 0
    if family == "tonic-clonic" or (family == "short-tonic-clonic" and rng.random() < 0.5):
        tonic_len = int(rng.uniform(5, 15) * FS) if family == "tonic-clonic" else int(rng.uniform(3, 8) * FS)
        dyn[onset:onset + tonic_len] = _tonic(rng, tonic_len)
    start = onset + tonic_len
    length = {"tonic-clonic": (60, 130), "short-tonic-clonic": (20, 45), "clonic": (25, 90),
              "hypermotor": (15, 60)}[family]
    end = min(start + int(rng.uniform(*length) * FS), n - 5 * FS)
    mid = down[(start + end) // 2]
    if family == "tonic-clonic":
        main = _clonic(rng, end - start, user, mid, f0=(4.5, 7.0), f1=(1.3, 2.5), amp=(250, 700))
    elif family == "short-tonic-clonic":
        main = _clonic(rng, end - start, user, mid, f0=(3.0, 5.0), f1=(2.0, 3.0), amp=(200, 600))
    elif family == "clonic":
        f = rng.uniform(1.5, 4.0)
        main = _clonic(rng, end - start, user, mid, f0=(f, f * 1.1), f1=(f * 0.8, f), amp=(250, 600))
    else:
        main = _hypermotor(rng, end - start, user)
    dyn[start:end] = main
    dyn[end:] = _activity("Resting", rng, n - end, user) * 0.3
    return dyn, start, end


def _orientation(rng: np.random.Generator, changes: list[int], n: int) -> np.ndarray:
    """Unit gravity direction per sample, turning smoothly (over ~1.5 s) at each change, [n, 3]."""
    down = np.array([0.0, 0.0, 1.0])
    vectors = [down + 0.8 * _unit(rng) for _ in range(len(changes) + 1)]
    segment = np.searchsorted(np.sort(np.asarray(changes, dtype=np.int64)), np.arange(n), side="right")
    g = np.stack(vectors)[segment]
    kernel = np.ones(int(1.5 * FS)) / int(1.5 * FS)
    g = np.stack([np.convolve(np.pad(g[:, i], len(kernel), mode="edge"), kernel, mode="same")
                  [len(kernel):-len(kernel)] for i in range(3)], axis=1)
    return g / np.linalg.norm(g, axis=1, keepdims=True)


def _resample(x: np.ndarray, drift: float, n: int) -> np.ndarray:
    """What a watch whose 25 Hz clock runs ``drift`` slow records: samples at true positions k (1 + drift)."""
    pos = np.arange(n) * (1.0 + drift)
    grid = np.arange(len(x))
    if x.ndim == 1:
        return np.interp(pos, grid, x)
    return np.stack([np.interp(pos, grid, x[:, i]) for i in range(x.shape[1])], axis=1)


def _spectral(mag: np.ndarray) -> dict[str, np.ndarray]:
    """OSD-style per-datapoint spectrum figures and alarm states from magnitude [36, 125] mg."""
    x = mag - mag.mean(axis=1, keepdims=True)
    power = np.abs(np.fft.rfft(x, axis=1)) ** 2 / SAMPLES ** 2
    freqs = np.fft.rfftfreq(SAMPLES, 1 / FS)
    roi = power[:, (freqs >= ROI_HZ[0]) & (freqs < ROI_HZ[1])].sum(axis=1)
    spec = power[:, (freqs >= SPEC_HZ[0]) & (freqs <= SPEC_HZ[1])].sum(axis=1)
    bands = np.stack([power[:, (freqs >= b) & (freqs < b + 1) & (freqs > 0)].sum(axis=1) for b in range(10)], axis=1)
    in_alarm = (roi > ALARM_POWER) & (roi > ALARM_RATIO * spec)
    idx = np.arange(len(in_alarm))
    consecutive = idx - np.maximum.accumulate(np.where(in_alarm, -1, idx))
    state = np.minimum(consecutive, 2)
    return {"specPower": np.rint(spec).astype(np.int64), "roiPower": np.rint(roi).astype(np.int64),
            "simpleSpec": np.rint(bands).astype(np.int64), "alarmState": state.astype(np.int64)}


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _event(rng: np.random.Generator, event_id: int, etype: str, user: _User, start: datetime,
           family: str | None = None) -> dict[str, Any]:
    """One OSDB event object, fields in OSDB order. Signals are made on the true time axis and then
    recorded through the user's sensor (gain, per-axis offset, noise floor, clock drift)."""
    drift = user.drift + rng.normal(0, 0.002)
    nt = int(np.ceil(N * (1 + abs(drift)))) + 2
    changes = [int(c) for c in rng.integers(0, nt, size=rng.integers(0, 3))]
    seizure_times = None
    hr_extra = np.zeros(nt)
    o2_drop = np.zeros(nt)
    if etype == "Seizure":
        family = family or FAMILIES[0]
        onset = int(rng.uniform(5, 30) * FS)
        changes.append(onset)  # the wrist turns as the body stiffens
    down = _orientation(rng, changes, nt)
    if etype == "Seizure":
        dyn, sz_start, sz_end = _seizure(rng, family, onset, user, down)
        subtype = FAMILY_SUBTYPES[family]
        seizure_times = [round(sz_start / FS / (1 + drift), 1), round(sz_end / FS / (1 + drift), 1)]
        t = np.arange(nt)
        hr_extra = rng.uniform(40, 70) * np.clip((t - onset) / (30 * FS), 0, 1) * np.exp(
            -np.clip(t - sz_end, 0, None) / (120 * FS))
        o2_drop = rng.uniform(3, 8) * ((t > sz_start) & (t < sz_end + 30 * FS))
        desc = f"Synthetic seizure, family {family}"
    elif etype == "False Alarm":
        subtype = str(rng.choice(_FA_KINDS))
        dyn = _daily(rng, nt, user)
        length = int(rng.uniform(20, 100) * FS)
        at = int(rng.integers(0, nt - length))
        dyn[at:at + length] = _activity(subtype, rng, length, user)
        desc = f"Synthetic false alarm: {subtype.lower()}"
    else:
        subtype = str(rng.choice(_NDA_KINDS))
        dyn = _daily(rng, nt, user, (subtype,) + _NDA_KINDS[:1])
        desc = f"Synthetic normal daily activity: {subtype.lower()}"
    true_acc = user.gravity * down + dyn
    gain = user.gain * (1 + rng.normal(0, 0.01))
    acc = _resample(gain * true_acc, drift, N) + user.offset + user.noise * rng.normal(size=(N, 3))
    dyn, hr_extra, o2_drop = (_resample(v, drift, N) for v in (dyn, hr_extra, o2_drop))
    acc3d = np.rint(acc).astype(np.int64)
    mag = np.rint(np.linalg.norm(acc, axis=1)).astype(np.int64)
    spectral = _spectral(mag.reshape(DATAPOINTS, SAMPLES).astype(np.float64))
    movement = np.abs(dyn).sum(axis=1).reshape(DATAPOINTS, SAMPLES).mean(axis=1)
    hr = (user.hr_rest + np.minimum(movement / 10, 30) + hr_extra.reshape(DATAPOINTS, SAMPLES).mean(axis=1)
          + rng.normal(0, 2, DATAPOINTS))
    o2 = user.o2_rest - o2_drop.reshape(DATAPOINTS, SAMPLES).mean(axis=1) + rng.normal(0, 0.5, DATAPOINTS)
    hr_list: list[int | None] = [int(v) for v in np.rint(hr)]
    o2_list: list[int | None] = [int(v) for v in np.clip(np.rint(o2), 70, 100)]
    raw = mag.reshape(DATAPOINTS, SAMPLES).tolist()
    raw3d: list[list[int] | None] = acc3d.reshape(DATAPOINTS, SAMPLES * 3).tolist()

    quirk = rng.random(7)  # OSDB's known defects, rare enough to keep the dataset usable
    drop_hr_key = quirk[0] < 0.02
    if quirk[0] < 0.04:
        hr_list = [-1] * DATAPOINTS
    if quirk[1] < 0.05:
        o2_list = [-1] * DATAPOINTS
    if quirk[2] < 0.05:
        raw3d = [[] if quirk[2] < 0.025 else None] * DATAPOINTS
    if quirk[3] < 0.05:
        raw = [r + [0] * 25 for r in raw]
    if quirk[4] < 0.03:
        raw[int(rng.integers(DATAPOINTS))] = []
    if quirk[5] < 0.03:
        j = int(rng.integers(DATAPOINTS))
        raw[j] = raw[j][:100]

    points = []
    for j in range(DATAPOINTS):
        point: dict[str, Any] = {"dataTime": _iso(start + timedelta(seconds=5 * j)), "eventId": event_id,
                                 "userId": user.user_id}
        if not drop_hr_key:
            point["hr"] = hr_list[j]
        point.update({"o2Sat": o2_list[j], "alarmState": int(spectral["alarmState"][j]),
                      "specPower": int(spectral["specPower"][j]), "roiPower": int(spectral["roiPower"][j]),
                      "simpleSpec": spectral["simpleSpec"][j].tolist(), "rawData": raw[j]})
        if raw3d[j] is not None:
            point["rawData3D"] = raw3d[j]
        points.append(point)
    return {"id": event_id, "userId": user.user_id, "type": etype, "subType": subtype, "desc": desc,
            "dataTime": _iso(start), "osdAlarmState": int(spectral["alarmState"].max()), "sampleFreq": FS,
            "seizureTimes": seizure_times, "dataSourceName": user.source, "datapoints": points}


def _users(rng: np.random.Generator, n: int) -> list[_User]:
    return [_User(user_id=u + 1, noise=rng.uniform(2, 20), gravity=rng.uniform(970, 1030),
                  gain=rng.uniform(0.92, 1.08), offset=tuple(rng.uniform(-40, 40, 3)),
                  drift=rng.uniform(-0.02, 0.02), intensity=rng.uniform(0.7, 1.4), hr_rest=rng.uniform(55, 85),
                  o2_rest=rng.uniform(95, 99), source=str(rng.choice(_SOURCES))) for u in range(n)]


def _plan(rng: np.random.Generator, users: int, events: int, mix: Mix) -> list[tuple[str, int, str | None]]:
    """(type, user index, seizure family) per event: the mix's seizure share dealt over two thirds of
    the users with its families in turn, its false-alarm share, the rest NDA."""
    n_sz = max(1, round(events * mix.seizure_share))
    n_fa = max(1, round(events * mix.false_alarm_share))
    seizure_users = max(1, -(-2 * users // 3))
    plan: list[tuple[str, int, str | None]] = [("Seizure", i % seizure_users, mix.families[i % len(mix.families)])
                                              for i in range(n_sz)]
    plan += [("False Alarm", int(u), None) for u in rng.integers(0, users, n_fa)]
    plan += [("NDA", int(u), None) for u in rng.integers(0, users, events - n_sz - n_fa)]
    order = rng.permutation(len(plan))
    return [plan[i] for i in order]


def _write_json(path: Path, events: list[dict[str, Any]]) -> None:
    """One event per line inside a JSON array: deterministic text, easy to diff and to stream."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            fh.write("[\n")
            for i, event in enumerate(events):
                fh.write(json.dumps(event, separators=(",", ":"), allow_nan=False))
                fh.write(",\n" if i + 1 < len(events) else "\n")
            fh.write("]\n")


def synthesize(out_dir: str | Path, *, users: int = DEFAULT_USERS, events: int = DEFAULT_EVENTS,
               seed: int = DEFAULT_SEED, mix: Mix = Mix()) -> SynthResult:
    """Write the three OSDB JSON files and their flattened CSV (via ``flatten``) into ``out_dir``."""
    if users < 1 or events < 3:
        raise ValueError(f"need users >= 1 and events >= 3, got users={users}, events={events}")
    rng = np.random.default_rng(seed)
    people = _users(rng, users)
    by_type: dict[str, list[dict[str, Any]]] = {etype: [] for etype in FILES}
    starts = np.sort(rng.choice(365 * 24 * 720, size=events, replace=False)) * 5
    for i, (etype, u, family) in enumerate(_plan(rng, users, events, mix)):
        start = _EPOCH + timedelta(seconds=int(starts[i]))
        by_type[etype].append(_event(rng, 1000 + i, etype, people[u], start, family))
    out_dir = Path(out_dir)
    json_paths = tuple(out_dir / FILES[etype] for etype in FILES)
    for etype, path in zip(FILES, json_paths):
        _write_json(path, by_type[etype])
    csv_path = out_dir / CSV_NAME
    stats = flatten(json_paths, csv_path)
    return SynthResult(json_paths=json_paths, csv_path=csv_path, stats=stats)


def event_families(json_path: str | Path) -> dict[int, str]:
    """eventId -> seizure family of a generated seizure file (read from each event's ``desc``)."""
    marker = "family "
    return {int(e["id"]): str(e["desc"]).split(marker, 1)[1] for e in iter_events(json_path)
            if marker in str(e.get("desc", ""))}


def default_dataset(root: str | Path = "artifacts") -> Path:
    """CSV of the built-in dataset under ``root``/builtin, generated (fixed seed) on first use.

    A manifest written after the CSV records how it was made; a missing or different manifest
    (an interrupted run, or an older generator) makes the dataset again.
    """
    out_dir = Path(root) / "builtin"
    csv_path, manifest_path = out_dir / CSV_NAME, out_dir / MANIFEST_NAME
    manifest = {"generator_version": GENERATOR_VERSION, "seed": DEFAULT_SEED, "users": DEFAULT_USERS,
                "events": DEFAULT_EVENTS}
    try:
        current = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        current = None
    if current != manifest or not csv_path.exists():
        synthesize(out_dir, users=DEFAULT_USERS, events=DEFAULT_EVENTS, seed=DEFAULT_SEED)
        write_json(manifest_path, manifest)
    return csv_path


__all__ = ["SynthResult", "synthesize", "default_dataset", "event_families", "FILES", "FAMILIES", "CSV_NAME",
           "GENERATOR_VERSION", "DEFAULT_SEED",
           "DEFAULT_USERS", "DEFAULT_EVENTS"]
