"""Inference on a verified bundle with onnxruntime: no torch on the serving path."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from titanic_mlops import schema
from titanic_mlops.bundle import Bundle


class Predictor:
    """Loads the bundle's ONNX graph once; encodes raw records with the bundle's preprocessing."""

    def __init__(self, bundle: Bundle, threads: int = 1) -> None:
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
        self.version = bundle.version
        self.manifest = bundle.manifest

    def predict_encoded(self, x: np.ndarray) -> np.ndarray:
        """Probabilities for an already-encoded float32 matrix."""
        (p,) = self.session.run(None, {self.input_name: x.astype(np.float32, copy=False)})
        return p.reshape(-1)

    def predict_proba(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Probabilities for validated raw records (missing optional fields are imputed)."""
        if not records:
            return np.zeros(0, dtype=np.float32)
        return self.predict_encoded(schema.encode(records, self.preprocessing))
