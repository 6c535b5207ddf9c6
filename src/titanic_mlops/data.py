"""Raw CSV → validated records → stratified split → tensors, raw-unit splits, preprocessing.

I/O lives in :func:`preprocess` and :func:`titanic_dataset`; everything else is pure.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import train_test_split

from titanic_mlops import encoding, schema

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
RAW_CSV = PROJECT_ROOT / "data" / "raw" / "Titanic-Dataset.csv"
PROCESSED_DIR = PROJECT_ROOT / "data" / "processed"
# The splits in raw units (the 7 features as a client sends them, plus the label): the
# training split feeds cross-validation and, with the model's probabilities, becomes the
# drift reference sealed in each bundle; the held-out split scores registered bundles.
TRAIN_RAW = "train_raw.csv"
TEST_RAW = "test_raw.csv"
TRAIN_TENSORS = "train.pt"
TEST_TENSORS = "test.pt"
PREPROCESSING = "preprocessing.json"
# What :func:`preprocess` writes (dvc.yaml's preprocess outs), and what training reads of it.
PROCESSED_FILES = (TRAIN_TENSORS, TEST_TENSORS, PREPROCESSING, TRAIN_RAW, TEST_RAW)
TRAINING_INPUTS = (TRAIN_TENSORS, TEST_TENSORS, PREPROCESSING, TRAIN_RAW)
CONFIG_FILE = PROJECT_ROOT / "configs" / "config.yaml"


class RawDataError(ValueError):
    """The raw CSV does not have the expected columns or values."""


@dataclass(frozen=True)
class Split:
    """A stratified train/test split of validated raw records with their labels."""

    train: list[dict[str, Any]]
    train_y: np.ndarray
    test: list[dict[str, Any]]
    test_y: np.ndarray


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _raw_value(value: Any) -> Any:
    # pandas gives numpy scalars and NaN; the schema wants plain Python values or None.
    if isinstance(value, float) and np.isnan(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def load_raw(path: Path | str = RAW_CSV) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Read and validate the raw Kaggle CSV; return schema records and the 0/1 labels.

    Raises :class:`RawDataError` naming the column (and row) at fault.
    """
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise RawDataError(f"{path}: not a readable CSV ({exc})") from exc
    needed = [s.raw_column for s in schema.FIELDS] + [schema.TARGET_RAW_COLUMN]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise RawDataError(f"{path}: missing column(s) {', '.join(missing)}")
    if frame.empty:
        raise RawDataError(f"{path}: no rows")
    labels = frame[schema.TARGET_RAW_COLUMN]
    bad = ~labels.isin([0, 1])
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise RawDataError(f"{path}: row {row + 2}: {schema.TARGET_RAW_COLUMN} must be 0 or 1")
    records: list[dict[str, Any]] = []
    columns = {s.name: s.raw_column for s in schema.FIELDS}
    for i, raw in enumerate(_rows(frame, columns)):
        try:
            records.append(schema.check_record(raw))
        except schema.SchemaError as exc:
            spec = schema.FIELDS_BY_NAME[exc.field]
            got = raw[exc.field]
            raise RawDataError(
                f"{path}: row {i + 2}, column {spec.raw_column}: {exc.rule} (got {got!r})"
            ) from exc
    return records, labels.to_numpy(dtype=np.int64)


def _rows(frame: pd.DataFrame, columns: Mapping[str, str]) -> Iterator[dict[str, Any]]:
    """Rows of ``frame`` as plain-Python dicts ``{feature: value}``; ``columns`` maps
    feature names to the frame's column names."""
    values = {name: frame[column].tolist() for name, column in columns.items()}
    for i in range(len(frame)):
        yield {name: _raw_value(column[i]) for name, column in values.items()}


def split(records: list[dict[str, Any]], y: np.ndarray, test_size: float, seed: int) -> Split:
    """Stratified split with a fixed seed: the same input always gives the same split."""
    idx_train, idx_test = train_test_split(
        np.arange(len(records)), test_size=test_size, stratify=y, random_state=seed
    )
    return Split(
        train=[records[i] for i in idx_train],
        train_y=y[idx_train],
        test=[records[i] for i in idx_test],
        test_y=y[idx_test],
    )


def to_tensors(
    records: list[dict[str, Any]], y: np.ndarray, prep: encoding.Preprocessing
) -> dict[str, torch.Tensor]:
    """Encode records with ``prep`` into the tensors the trainer consumes."""
    return {
        "x": torch.from_numpy(encoding.encode(records, prep)),
        "y": torch.from_numpy(y.astype(np.float32)),
    }


def records_csv(
    records: list[Mapping[str, Any]],
    y: np.ndarray,
    extra: Mapping[str, np.ndarray] | None = None,
) -> bytes:
    """Raw-unit records and labels (and extra float columns) as CSV bytes.

    Columns: the 7 features in schema order (missing values left empty), the label, then
    ``extra`` in its order: with the model's probabilities, this is a bundle's drift reference.
    """
    frame = pd.DataFrame.from_records(list(records), columns=list(schema.FEATURES))
    frame[schema.TARGET] = y
    for name, values in (extra or {}).items():
        frame[name] = np.asarray(values, dtype=np.float64)
    return frame.to_csv(index=False, lineterminator="\n").encode()


def _tensor_bytes(tensors: dict[str, torch.Tensor]) -> bytes:
    buf = io.BytesIO()
    torch.save(tensors, buf)
    return buf.getvalue()


def _write_if_changed(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_bytes() != data:
        path.write_bytes(data)


def preprocess(
    raw_path: Path | str = RAW_CSV,
    processed_dir: Path | str = PROCESSED_DIR,
    test_size: float = 0.2,
    seed: int = 42,
) -> encoding.Preprocessing:
    """Validate, split, fit preprocessing on the training split and write all outputs.

    Outputs are byte-identical for the same input file and seed.
    """
    records, y = load_raw(raw_path)
    parts = split(records, y, test_size, seed)
    prep = encoding.fit(parts.train)
    processed = Path(processed_dir)
    _write_if_changed(
        processed / TRAIN_TENSORS, _tensor_bytes(to_tensors(parts.train, parts.train_y, prep))
    )
    _write_if_changed(
        processed / TEST_TENSORS, _tensor_bytes(to_tensors(parts.test, parts.test_y, prep))
    )
    _write_if_changed(processed / PREPROCESSING, prep.to_json().encode())
    # Both splits in raw units too: evaluation of a registered bundle re-encodes the test
    # split with the bundle's own preprocessing, exactly as serving would; cross-validation
    # refits preprocessing inside each fold from the training split's raw rows.
    _write_if_changed(processed / TEST_RAW, records_csv(parts.test, parts.test_y))
    _write_if_changed(processed / TRAIN_RAW, records_csv(parts.train, parts.train_y))
    log.info(
        "preprocessed %d rows: train=%d test=%d, survival rate train=%.3f test=%.3f",
        len(records),
        len(parts.train),
        len(parts.test),
        parts.train_y.mean(),
        parts.test_y.mean(),
    )
    return prep


def read_records_csv(path: Path | str) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Read a raw-unit CSV written by :func:`preprocess` back into records and labels."""
    frame = pd.read_csv(path)
    records = [schema.check_record(r) for r in _rows(frame, {n: n for n in schema.FEATURES})]
    return records, frame[schema.TARGET].to_numpy(dtype=np.int64)


def titanic_dataset(
    split_name: str = "train", processed_dir: Path | str = PROCESSED_DIR
) -> torch.utils.data.TensorDataset:
    """Load a processed split as a TensorDataset of (features, label)."""
    if split_name not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split_name!r}")
    path = Path(processed_dir) / f"{split_name}.pt"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `uv run invoke preprocess-data` first")
    tensors = torch.load(path, weights_only=True)
    return torch.utils.data.TensorDataset(tensors["x"], tensors["y"])


def load_preprocessing(processed_dir: Path | str = PROCESSED_DIR) -> encoding.Preprocessing:
    """The preprocessing fitted by the last :func:`preprocess` run."""
    return encoding.Preprocessing.from_json((Path(processed_dir) / PREPROCESSING).read_text())


def configured_arguments(config_file: Path = CONFIG_FILE) -> dict[str, Any]:
    """:func:`preprocess`'s arguments as ``configs/config.yaml`` sets them (``data.*``, ``seed``).

    ``python -m titanic_mlops.data`` (the DVC preprocess stage, whose params are these keys)
    and training's own fallback preprocess with the same values.
    """
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(config_file)
    return {
        "raw_path": PROJECT_ROOT / cfg.data.raw,
        "processed_dir": PROJECT_ROOT / cfg.data.processed_dir,
        "test_size": float(cfg.data.test_size),
        "seed": int(cfg.seed),
    }


if __name__ == "__main__":  # pragma: no cover - thin CLI
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    preprocess(**configured_arguments())
