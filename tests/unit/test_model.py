import pytest
import torch

from titanic_mlops.model import LogisticRegressionModel


def test_init_is_a_single_linear_layer():
    model = LogisticRegressionModel(11)
    assert model.linear.in_features == 11 and model.linear.out_features == 1
    assert sum(p.numel() for p in model.parameters()) == 12


@pytest.mark.parametrize("batch", [1, 7, 128])
def test_output_shapes(batch):
    model = LogisticRegressionModel(11)
    x = torch.randn(batch, 11)
    assert model(x).shape == (batch,)
    p = model.predict_proba(x)
    assert p.shape == (batch,) and ((p > 0) & (p < 1)).all()


@pytest.mark.parametrize("shape", [(4, 10), (4, 12), (11,), (2, 3, 11)])
def test_wrong_input_shape_raises(shape):
    with pytest.raises(ValueError, match=r"expected input of shape \(batch, 11\)"):
        LogisticRegressionModel(11)(torch.randn(*shape))


def test_zero_features_rejected():
    with pytest.raises(ValueError, match="n_features"):
        LogisticRegressionModel(0)
