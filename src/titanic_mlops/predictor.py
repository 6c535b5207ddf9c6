"""Inference on a verified bundle: onnxruntime, with a verified numpy fast path. No torch.

Why a fast path: onnxruntime releases the GIL on every ``run``. For a one-row request
the model itself takes microseconds, but in a threaded server each release makes the
request thread queue for the GIL again behind the others; measured here, that cost the
service ~10 % of its throughput (benchmarks/serve_bench.py). When the bundle's graph
is a logistic regression — ``sigmoid(w·x + b)`` — its coefficients are read *out of the
ONNX graph by onnxruntime itself* and checked against onnxruntime on probe inputs;
only if they agree to 1e-6 does numpy evaluate requests. Any other graph runs in
onnxruntime.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from titanic_mlops import schema
from titanic_mlops.bundle import Bundle

Backend = Literal["auto", "onnxruntime"]
# Agreement required between numpy and onnxruntime on the probe inputs.
FAST_PATH_TOLERANCE = 1e-6
N_PROBES = 256
# Up to this many rows, plain Python evaluates the verified linear form: for a one-row
# request numpy's per-call overhead (array creation, matmul, ufuncs) costs ~10x the maths.
SMALL_BATCH = 16


class Predictor:
    """Loads the bundle's ONNX graph once; encodes raw records with the bundle's preprocessing."""

    def __init__(self, bundle: Bundle, threads: int = 1, backend: Backend = "auto") -> None:
        import onnxruntime as ort  # 0.3 s import: keep it off module import

        options = ort.SessionOptions()
        # One small matmul per request: extra intra-op threads only add contention.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = threads
        self.session = ort.InferenceSession(
            bundle.onnx, sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name
        self.preprocessing = bundle.preprocessing
        self._linear = self._linear_form() if backend == "auto" else None
        self._plan = self.preprocessing.plan
        self._weights = self._linear[0].tolist() if self._linear is not None else []
        self.backend = (
            "numpy (verified linear form of model.onnx)" if self._linear else "onnxruntime"
        )

    def run_onnx(self, x: np.ndarray) -> np.ndarray:
        """Probabilities from onnxruntime for an encoded float32 matrix."""
        (p,) = self.session.run(None, {self.input_name: x.astype(np.float32, copy=False)})
        return p.reshape(-1)

    def _linear_form(self) -> tuple[np.ndarray, float] | None:
        """``(w, b)`` if the graph computes ``sigmoid(w·x + b)``, else None."""
        n = schema.N_ENCODED
        basis = np.vstack([np.zeros((1, n)), np.eye(n)]).astype(np.float32)
        p = self.run_onnx(basis).astype(np.float64)
        if p.shape != (n + 1,) or not np.all((p > 0) & (p < 1)):
            return None
        logits = np.log(p) - np.log1p(-p)
        w, b = logits[1:] - logits[0], float(logits[0])
        probes = np.random.default_rng(0).normal(0, 2, size=(N_PROBES, n)).astype(np.float32)
        probes[: n + 1] = basis
        expected = self.run_onnx(probes)
        if np.max(np.abs(_sigmoid(probes @ w + b) - expected)) > FAST_PATH_TOLERANCE:
            return None
        weights = w.tolist()
        python = np.array([_linear_python(row, weights, b) for row in probes.tolist()])
        if np.max(np.abs(python - expected)) > FAST_PATH_TOLERANCE:
            return None
        return w, b

    def predict_encoded(self, x: np.ndarray) -> np.ndarray:
        """Probabilities for an already-encoded float32 matrix."""
        if self._linear is None:
            return self.run_onnx(x)
        w, b = self._linear
        return _sigmoid(x @ w + b).astype(np.float32)

    def predict_proba(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Probabilities for validated raw records (missing optional fields are imputed)."""
        if not records:
            return np.zeros(0, dtype=np.float32)
        if self._linear is not None and len(records) <= SMALL_BATCH:
            bias, weights, plan = self._linear[1], self._weights, self._plan
            # float32 inputs and outputs, as numpy and onnxruntime see them
            p = [
                _linear_python(array("f", schema.encode_row(r, plan)), weights, bias)
                for r in records
            ]
            return np.array(p, dtype=np.float32)
        return self.predict_encoded(schema.encode(records, self.preprocessing))


def _linear_python(row: Sequence[float], weights: Sequence[float], bias: float) -> float:
    """``sigmoid(w·x + b)`` for one encoded row in plain Python (float64)."""
    z = bias + math.fsum(map(float.__mul__, weights, row))
    if z < -700:  # exp would overflow: the probability is 0 to double precision
        return 0.0
    return 1.0 / (1.0 + math.exp(-z))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # exp(-z) → inf for very negative z gives exactly 0
        return 1.0 / (1.0 + np.exp(-z))
