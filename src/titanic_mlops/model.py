"""The model: logistic regression as one ``nn.Linear`` to a single logit, its ONNX export and
the bundle files that hold it."""

from __future__ import annotations

import io
import warnings

import torch
from torch import nn

from titanic_mlops import bundle
from titanic_mlops.predictor import linear_certificate

ONNX_INPUT = "features"
ONNX_OUTPUT = "probability"
ONNX_OPSET = 17


class LogisticRegressionModel(nn.Module):
    """``p(survived) = sigmoid(w·x + b)``; ``forward`` returns the logit (for BCEWithLogitsLoss)."""

    def __init__(self, n_features: int) -> None:
        super().__init__()
        if n_features < 1:
            raise ValueError(f"n_features must be >= 1, got {n_features}")
        self.n_features = n_features
        self.linear = nn.Linear(n_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of shape ``(batch,)`` for ``x`` of shape ``(batch, n_features)``."""
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(
                f"expected input of shape (batch, {self.n_features}), got {tuple(x.shape)}"
            )
        return self.linear(x).squeeze(-1)

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Survival probabilities of shape ``(batch,)``."""
        return torch.sigmoid(self(x))


class _ProbabilityHead(nn.Module):
    # Serving wants probabilities, training wants logits: export the sigmoid with the model.
    def __init__(self, model: LogisticRegressionModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.model(x))


def export_onnx(model: LogisticRegressionModel) -> bytes:
    """Serialise ``model`` (with its sigmoid) to ONNX bytes with a dynamic batch axis."""
    model.eval()
    buf = io.BytesIO()
    example = torch.zeros(2, model.n_features)
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated but needs only `onnx` and writes one
        # self-contained file; the dynamo exporter adds onnxscript and external data.
        warnings.simplefilter("ignore", DeprecationWarning)
        # The shape check in forward() is a Python branch the tracer cannot record; it is
        # satisfied by construction for the exported graph.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            _ProbabilityHead(model),
            (example,),
            buf,
            dynamo=False,
            input_names=[ONNX_INPUT],
            output_names=[ONNX_OUTPUT],
            dynamic_axes={ONNX_INPUT: {0: "batch"}, ONNX_OUTPUT: {0: "batch"}},
            opset_version=ONNX_OPSET,
        )
    return buf.getvalue()


def state_dict_bytes(model: nn.Module) -> bytes:
    """The state dict as ``torch.save`` bytes (load it back with ``weights_only=True``)."""
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getvalue()


def model_files(model: LogisticRegressionModel) -> dict[str, bytes]:
    """The bundle files that hold the model: ONNX graph, state dict and, for a graph that
    computes ``sigmoid(w·x + b)``, its linear form read out of the graph by onnxruntime and
    checked against it (the serving fast path, see predictor.py)."""
    onnx = export_onnx(model)
    files = {bundle.MODEL_ONNX: onnx, bundle.MODEL_STATE: state_dict_bytes(model)}
    linear = linear_certificate(onnx)
    if linear is not None:
        files[bundle.LINEAR] = linear
    return files
