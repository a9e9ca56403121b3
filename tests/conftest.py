import torch
import pytest


@pytest.fixture
def small_batch():
    """A float64 batch for exact gradient checks: 9 examples, 5 features, 3 classes."""
    g = torch.Generator().manual_seed(123)
    x = torch.randn(9, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (9,), generator=g)
    return x, y


@pytest.fixture
def xor_data():
    x = torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=torch.float32)
    y = torch.tensor([0, 1, 1, 0])
    return x, y, x, y
