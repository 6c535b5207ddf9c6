"""Inference on a verified bundle: onnxruntime, with a verified linear fast path. No torch.

Why a fast path: onnxruntime releases the GIL on every ``run``. For a one-row request
the model itself takes microseconds, but in a threaded server each release makes the
request thread queue for the GIL again behind the others; measured here, that cost the
service ~10 % of its throughput (benchmarks/serve_bench.py). When the bundle's graph
is a logistic regression — ``sigmoid(w·x + b)`` — its coefficients are read *out of the
ONNX graph by onnxruntime itself* and checked against onnxruntime on probe inputs;
only if they agree to 1e-6 is the linear form used. Any other graph runs in onnxruntime.

Where that check runs: training does it once and seals the result in the bundle as
``linear.json`` (:func:`linear_certificate`), the registry's gate checks the sealed form
against onnxruntime again on the held-out rows before a version can be promoted
(``validation.py``), and the manifest's sha256 pins it. A service built on such a bundle
needs neither onnxruntime nor numpy until a request has more than :data:`SMALL_BATCH`
rows, which keeps both imports out of its cold start. A bundle without ``linear.json``
(registered before it existed) is checked when its predictor is built, as before.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from titanic_mlops import encoding, schema
from titanic_mlops.bundle import Bundle, dumps

if TYPE_CHECKING:
    import numpy as np

Backend = Literal["auto", "onnxruntime"]
# Agreement required between the linear form and onnxruntime on the probe inputs.
FAST_PATH_TOLERANCE = 1e-6
N_PROBES = 256
# Up to this many rows, plain Python evaluates the verified linear form: for a one-row
# request numpy's per-call overhead (array creation, matmul, ufuncs) costs ~10x the maths.
SMALL_BATCH = 16
LINEAR_BACKEND = "linear form of model.onnx, verified against onnxruntime"
ONNX_BACKEND = "onnxruntime"


class OnnxGraph:
    """An ONNX graph run by onnxruntime, whose session is created on first use.

    The import alone takes ~50 ms, and a session must not be created before a fork
    (see ``api/service.py``).
    """

    def __init__(self, onnx: bytes, threads: int = 1) -> None:
        self.onnx = onnx
        self.threads = threads
        self._session: Any = None
        self._input_name = ""

    def session(self) -> Any:
        """The onnxruntime session."""
        if self._session is None:
            import onnxruntime as ort

            options = ort.SessionOptions()
            # One small matmul per request: extra intra-op threads only add contention.
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = self.threads
            session = ort.InferenceSession(
                self.onnx, sess_options=options, providers=["CPUExecutionProvider"]
            )
            self._input_name = session.get_inputs()[0].name
            self._session = session
        return self._session

    def run(self, x: np.ndarray) -> np.ndarray:
        """Probabilities for an encoded float32 matrix."""
        import numpy as np

        session = self.session()
        (p,) = session.run(None, {self._input_name: x.astype(np.float32, copy=False)})
        return p.reshape(-1)


class Predictor:
    """Encodes raw records with the bundle's preprocessing and runs its model."""

    def __init__(self, bundle: Bundle, threads: int = 1, backend: Backend = "auto") -> None:
        self.preprocessing = bundle.preprocessing
        self._plan = self.preprocessing.plan
        self.graph = OnnxGraph(bundle.onnx, threads)
        linear = None
        if backend == "auto":
            linear = bundle.linear
            if linear is None:  # a bundle from before linear.json: check it here
                found = extract_linear_form(self.graph.run)
                linear = found[:2] if found is not None else None
        self._linear = linear
        self._weights_array: np.ndarray | None = None  # numpy's copy, made on first use
        self.backend = LINEAR_BACKEND if linear is not None else ONNX_BACKEND
        if linear is None:
            self.graph.session()  # fail now, not on the first request, if the graph cannot run

    def predict_encoded(self, x: np.ndarray) -> np.ndarray:
        """Probabilities for an already-encoded float32 matrix."""
        if self._linear is None:
            return self.graph.run(x)
        import numpy as np

        if self._weights_array is None:
            self._weights_array = np.asarray(self._linear[0], dtype=np.float64)
        return _sigmoid(x @ self._weights_array + self._linear[1]).astype(np.float32)

    def probabilities(self, records: Sequence[Mapping[str, Any]]) -> list[float]:
        """Probabilities for validated raw records, as float32 values in Python floats.

        Up to :data:`SMALL_BATCH` rows of a linear model this touches neither numpy nor
        onnxruntime.
        """
        if self._small(records):
            return self._small_batch(records)
        return self.predict_proba(records).tolist()

    def predict_proba(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """:meth:`probabilities` as a float32 array."""
        import numpy as np

        if self._small(records):
            return np.array(self._small_batch(records), dtype=np.float32)
        if not records:
            return np.zeros(0, dtype=np.float32)
        return self.predict_encoded(encoding.encode(records, self.preprocessing))

    def _small(self, records: Sequence[Mapping[str, Any]]) -> bool:
        return self._linear is not None and len(records) <= SMALL_BATCH

    def _small_batch(self, records: Sequence[Mapping[str, Any]]) -> list[float]:
        """The linear form in plain Python, row by row (float32 outputs, as numpy and
        onnxruntime give them)."""
        assert self._linear is not None
        weights, bias = self._linear
        plan = self._plan
        p = [
            _linear_python(array("f", encoding.encode_row(r, plan)), weights, bias) for r in records
        ]
        return array("f", p).tolist()


def extract_linear_form(
    run: Callable[[np.ndarray], np.ndarray],
) -> tuple[list[float], float, float] | None:
    """``(w, b, max error)`` if ``run`` computes ``sigmoid(w·x + b)`` to 1e-6, else None.

    ``run`` maps an encoded float32 matrix to probabilities (onnxruntime on the graph).
    The form is read from the graph's answers on the zero vector and the unit vectors,
    then checked against ``run`` on :data:`N_PROBES` probe rows, in numpy and in the
    plain-Python evaluation that serves small requests.
    """
    import numpy as np

    n = schema.N_ENCODED
    basis = np.vstack([np.zeros((1, n)), np.eye(n)]).astype(np.float32)
    p = run(basis).astype(np.float64)
    if p.shape != (n + 1,) or not np.all((p > 0) & (p < 1)):
        return None
    logits = np.log(p) - np.log1p(-p)
    w, b = logits[1:] - logits[0], float(logits[0])
    probes = np.random.default_rng(0).normal(0, 2, size=(N_PROBES, n)).astype(np.float32)
    probes[: n + 1] = basis
    expected = run(probes)
    weights = w.tolist()
    python = np.array([_linear_python(row, weights, b) for row in probes.tolist()])
    error = max(
        float(np.max(np.abs(_sigmoid(probes @ w + b) - expected))),
        float(np.max(np.abs(python - expected))),
    )
    if error > FAST_PATH_TOLERANCE:
        return None
    return weights, b, error


def linear_certificate(onnx: bytes) -> bytes | None:
    """The bundle's ``linear.json`` for an ONNX graph, or None if it is not linear."""
    import onnxruntime as ort

    found = extract_linear_form(OnnxGraph(onnx).run)
    if found is None:
        return None
    weights, bias, error = found
    return dumps(
        {
            "weights": weights,
            "bias": bias,
            "verified_against": f"onnxruntime {ort.__version__}",
            "probes": N_PROBES,
            "max_abs_error": error,
            "tolerance": FAST_PATH_TOLERANCE,
        }
    )


def _linear_python(row: Sequence[float], weights: Sequence[float], bias: float) -> float:
    """``sigmoid(w·x + b)`` for one encoded row in plain Python (float64)."""
    z = bias + math.fsum(map(float.__mul__, weights, row))
    if z < -700:  # exp would overflow: the probability is 0 to double precision
        return 0.0
    return 1.0 / (1.0 + math.exp(-z))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    import numpy as np

    with np.errstate(over="ignore"):  # exp(-z) → inf for very negative z gives exactly 0
        return 1.0 / (1.0 + np.exp(-z))
