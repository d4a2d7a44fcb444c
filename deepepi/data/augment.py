"""Training-split augmentation: the reference's phase -> user -> noise -> over/undersample chain.

Input is the flattened rows (one per 5 s datapoint) of the **training events only**; validation and
test rows never come here. Every step adds whole synthetic events; the reference semantics
(nnTraining2 augmentData.py) with its bugs fixed:

- phase (``phaseAugmentation``, ``phaseAugmentationStep`` s): per seizure event, rows sorted by
  dataTime (stable), rows < 4 s after the previous one dropped, the samples concatenated; for every
  offset k*s < 125 (k >= 1) one event of the n-1 consecutive 125-sample rows starting there:
  floor(124 / s) copies. Copies keep the first row's metadata; their dataTime steps by 5 s from the
  first row's (the reference gives every row one dataTime, which scrambles row order downstream).
- user (``userAugmentation``): seizure events per user (phase copies count) are topped up to the
  largest user's count by duplicates drawn with replacement from that user's own seizure events
  (the reference uses a fixed seed 0; here ``randomSeed``).
- noise (``noiseAugmentation``, ``...Factor`` copies of every seizure event, Gaussian sigma
  ``...Value`` milli-g): rows with 3D data get independent noise on x, y and z and their magnitude
  moves by |xyz + noise| - |xyz| (equal to recomputing |xyz| when the watch magnitude is |xyz|);
  rows without 3D data get the noise on the magnitude itself (the reference gave such rows a
  magnitude of pure noise).
- over/undersample: imbalanced-learn on events (deepepi.data.balance); an oversampled duplicate is a
  new event.

Every synthetic event gets a fresh integer eventId above every id in the dataset (the reference's
"<eid>-<n>" ids collide between steps) and a provenance row: eventId, source (the event copied),
origin (the real event it derives from), kind, copy number and a readable name such as
``"17#phase3#noise1"``. Random draws come from numpy Generators seeded from ``randomSeed`` (one
stream per step); the output rows are stably sorted by (eventId, dataTime), so the same seed gives
the same arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from deepepi.data.balance import balance_events
from deepepi.core.constants import DATAPOINT_SECONDS, SAMPLES_PER_DATAPOINT
from deepepi.data.csvio import M_COLUMNS, X_COLUMNS, Y_COLUMNS, Z_COLUMNS

SEIZURE = 1
PHASE_MIN_GAP_S = 4.0      # reference: rows closer than this to the previous row are dropped
PROVENANCE_COLUMNS = ("eventId", "source", "origin", "kind", "copy", "name")
XYZ_COLUMNS = (X_COLUMNS, Y_COLUMNS, Z_COLUMNS)
_STREAMS = {"user": 1, "noise": 2}


@dataclass(frozen=True)
class AugmentSettings:
    phase: bool = False
    phase_step: int = 1
    user: bool = False
    noise: bool = False
    noise_factor: int = 0
    noise_value: float = 0.0
    oversample: str = "none"
    undersample: str = "none"
    seed: int = 42

    @classmethod
    def from_processing(cls, proc: dict[str, Any], seed: int) -> "AugmentSettings":
        return cls(phase=bool(proc["phaseAugmentation"]), phase_step=int(proc["phaseAugmentationStep"]),
                   user=bool(proc["userAugmentation"]), noise=bool(proc["noiseAugmentation"]),
                   noise_factor=int(proc["noiseAugmentationFactor"]),
                   noise_value=float(proc["noiseAugmentationValue"]),
                   oversample="random" if proc["oversample"] == "smote" else str(proc["oversample"]),
                   undersample=str(proc["undersample"]), seed=int(seed))

    @property
    def active(self) -> bool:
        return (self.phase or self.user or (self.noise and self.noise_factor > 0)
                or self.oversample != "none" or self.undersample != "none")

    @property
    def needs_xyz(self) -> bool:
        return self.noise and self.noise_factor > 0


@dataclass
class Augmented:
    """The augmented training rows, one provenance row per synthetic event, and per-step counts."""

    frame: pd.DataFrame
    provenance: pd.DataFrame
    added: dict[str, int] = field(default_factory=dict)
    removed: int = 0


class _Builder:
    """Holds the rows, hands out fresh ids and records provenance."""

    def __init__(self, frame: pd.DataFrame, first_id: int) -> None:
        self.frame = frame.reset_index(drop=True)
        self.next_id = int(first_id)
        self.prov: list[tuple] = []
        self.names: dict[int, str] = {}
        self.origin: dict[int, int] = {}

    def name(self, eid: int) -> str:
        return self.names.get(eid, str(eid))

    def groups(self) -> dict[int, np.ndarray]:
        """Row positions of each event, in (dataTime, file) order."""
        order = np.lexsort((self.frame["dataTime"].to_numpy(), self.frame["eventId"].to_numpy()))
        ev = self.frame["eventId"].to_numpy()[order]
        starts = np.flatnonzero(np.r_[True, ev[1:] != ev[:-1]]) if len(ev) else np.zeros(0, dtype=np.int64)
        stops = np.r_[starts[1:], len(ev)]
        return {int(ev[a]): order[a:z] for a, z in zip(starts, stops)}

    def seizure_events(self) -> list[int]:
        f = self.frame
        return sorted(int(e) for e in f.loc[f["type"] == SEIZURE, "eventId"].unique())

    def new_id(self, source: int, kind: str, copy: int) -> int:
        eid = self.next_id
        self.next_id += 1
        name = f"{self.name(source)}#{kind}{copy}"
        self.names[eid] = name
        self.origin[eid] = self.origin.get(source, source)
        self.prov.append((eid, source, self.origin[eid], kind, copy, name))
        return eid

    def new_event(self, source: int, kind: str, copy: int, rows: pd.DataFrame) -> pd.DataFrame:
        """A copy of ``rows`` under a fresh id."""
        rows = rows.copy()
        rows["eventId"] = np.int64(self.new_id(source, kind, copy))
        return rows

    def frame_of(self, columns: dict[str, np.ndarray]) -> pd.DataFrame:
        """A block of new rows with this frame's columns and dtypes, built from whole arrays."""
        dtypes = self.frame.dtypes
        return pd.DataFrame({c: np.asarray(columns[c]).astype(dtypes[c], copy=False) for c in self.frame.columns})

    def add(self, parts: list[pd.DataFrame]) -> int:
        if parts:
            self.frame = pd.concat([self.frame, *parts], ignore_index=True)
        return len(parts)


def _has_xyz(frame: pd.DataFrame) -> bool:
    return all(c in frame.columns for cols in XYZ_COLUMNS for c in cols)


def _phase(b: _Builder, step: int) -> int:
    groups = b.groups()
    channels = [M_COLUMNS] + (list(XYZ_COLUMNS) if _has_xyz(b.frame) else [])
    samples = {c for cols in channels for c in cols}
    offsets = np.arange(step, SAMPLES_PER_DATAPOINT, step)
    parts = []
    for eid in b.seizure_events():
        rows = b.frame.iloc[groups[eid]]
        t = rows["dataTime"].to_numpy()
        keep = np.ones(len(rows), dtype=bool)
        keep[1:] = np.diff(t) >= PHASE_MIN_GAP_S
        rows = rows[keep]
        n = len(rows) - 1  # rows per copy
        if n < 1:
            continue
        ids = [b.new_id(eid, "phase", k) for k in range(1, len(offsets) + 1)]
        total = len(offsets) * n
        block = {c: np.repeat(rows[c].to_numpy()[:1], total) for c in b.frame.columns if c not in samples}
        block["eventId"] = np.repeat(np.asarray(ids, dtype=np.int64), n)
        block["dataTime"] = np.tile(t[keep][0] + DATAPOINT_SECONDS * np.arange(n), len(offsets))
        take = offsets[:, None] + np.arange(SAMPLES_PER_DATAPOINT * n)[None, :]
        for cols in channels:
            stream = np.nan_to_num(rows[list(cols)].to_numpy(dtype=np.float32)).reshape(-1)
            shifted = stream[take].reshape(total, SAMPLES_PER_DATAPOINT)
            block.update({c: shifted[:, j] for j, c in enumerate(cols)})
        parts.append(b.frame_of(block))
    return len(offsets) * b.add(parts)


def _user(b: _Builder, rng: np.random.Generator) -> int:
    f = b.frame
    seiz = f.loc[f["type"] == SEIZURE, ["eventId", "userId"]].drop_duplicates("eventId")
    per_user = {int(u): sorted(int(e) for e in g["eventId"]) for u, g in seiz.groupby("userId", sort=True)}
    if not per_user:
        return 0
    target = max(len(v) for v in per_user.values())
    groups = b.groups()
    parts, copies = [], {}
    for user, events in per_user.items():
        for src in rng.choice(np.asarray(events), size=target - len(events), replace=True):
            copies[int(src)] = copies.get(int(src), 0) + 1
            parts.append(b.new_event(int(src), "user", copies[int(src)], f.iloc[groups[int(src)]]))
    return b.add(parts)


def _noisy(rows: pd.DataFrame, rng: np.random.Generator, sigma: float, xyz: bool) -> dict[str, np.ndarray]:
    """The sample columns of one noisy copy of an event's rows (see the module doc for the 3D rule)."""
    mag = rows[list(M_COLUMNS)].to_numpy(dtype=np.float64)
    out: dict[str, np.ndarray] = {}
    if xyz:
        axes = np.stack([rows[list(c)].to_numpy(dtype=np.float64) for c in XYZ_COLUMNS])  # [3, rows, 125]
        has = np.isfinite(axes).all(axis=(0, 2)) & (np.abs(axes).sum(axis=(0, 2)) > 0)
    else:
        has = np.zeros(len(rows), dtype=bool)
    noise = rng.normal(0.0, sigma, size=(3, len(rows), SAMPLES_PER_DATAPOINT))
    if xyz:
        new = np.where(has[None, :, None], axes + noise, axes)
        mag[has] += np.sqrt((new[:, has] ** 2).sum(axis=0)) - np.sqrt((axes[:, has] ** 2).sum(axis=0))
        for cols, axis in zip(XYZ_COLUMNS, new):
            out.update({c: axis[:, j] for j, c in enumerate(cols)})
    mag[~has] += noise[0, ~has]
    out.update({c: mag[:, j] for j, c in enumerate(M_COLUMNS)})
    return out


def _noise(b: _Builder, factor: int, sigma: float, rng: np.random.Generator) -> int:
    groups = b.groups()
    xyz = _has_xyz(b.frame)
    parts = []
    for eid in b.seizure_events():
        rows = b.frame.iloc[groups[eid]]
        base = {c: rows[c].to_numpy() for c in b.frame.columns}
        for d in range(1, factor + 1):
            block = {**base, **_noisy(rows, rng, sigma, xyz)}
            block["eventId"] = np.full(len(rows), b.new_id(eid, "noise", d), dtype=np.int64)
            parts.append(b.frame_of(block))
    return b.add(parts)


def _balance(b: _Builder, s: AugmentSettings) -> tuple[int, int]:
    f = b.frame
    events = (f[["eventId", "userId", "type"]].drop_duplicates("eventId").rename(columns={"type": "label"})
              .sort_values("eventId", kind="stable"))
    ids = balance_events(events, oversample=s.oversample, undersample=s.undersample, seed=s.seed)
    kept = set(int(e) for e in ids)
    removed = len(events) - len(kept)
    groups = b.groups()
    parts, seen = [], {}
    for eid in (int(e) for e in ids):
        seen[eid] = seen.get(eid, 0) + 1
        if seen[eid] > 1:
            parts.append(b.new_event(eid, "over", seen[eid] - 1, f.iloc[groups[eid]]))
    b.frame = f[f["eventId"].isin(kept)]
    return b.add(parts), removed


def augment(rows: pd.DataFrame, settings: AugmentSettings, *, first_id: int) -> Augmented:
    """Augment the training rows; synthetic eventIds start at ``first_id`` (above every real id)."""
    b = _Builder(rows, first_id)
    added: dict[str, int] = {}
    removed = 0
    if settings.phase:
        added["phase"] = _phase(b, settings.phase_step)
    if settings.user:
        added["user"] = _user(b, np.random.default_rng([settings.seed, _STREAMS["user"]]))
    if settings.noise and settings.noise_factor > 0:
        rng = np.random.default_rng([settings.seed, _STREAMS["noise"]])
        added["noise"] = _noise(b, settings.noise_factor, settings.noise_value, rng)
    if settings.oversample != "none" or settings.undersample != "none":
        added["over"], removed = _balance(b, settings)
    frame = b.frame.iloc[np.lexsort((b.frame["dataTime"].to_numpy(), b.frame["eventId"].to_numpy()))]
    provenance = pd.DataFrame(b.prov, columns=list(PROVENANCE_COLUMNS))
    if removed:  # undersampling may drop synthetic events too: keep provenance for what remains
        provenance = provenance[provenance["eventId"].isin(frame["eventId"].unique())]
    return Augmented(frame=frame.reset_index(drop=True), provenance=provenance.reset_index(drop=True),
                     added=added, removed=removed)


__all__ = ["AugmentSettings", "Augmented", "augment", "PROVENANCE_COLUMNS"]
