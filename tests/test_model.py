import torch
from torch import nn

from normcompress.model import MODELS, SeedAutoencoder, build_model


def test_seed_model_layers_match_the_original_study():
    model = SeedAutoencoder()
    convs = [(type(m), m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding)
             for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert convs == [
        (nn.Conv2d, 3, 16, (3, 3), (2, 2), (1, 1)),
        (nn.Conv2d, 16, 32, (3, 3), (2, 2), (1, 1)),
        (nn.Conv2d, 32, 64, (7, 7), (1, 1), (0, 0)),
        (nn.ConvTranspose2d, 64, 32, (7, 7), (1, 1), (0, 0)),
        (nn.ConvTranspose2d, 32, 16, (3, 3), (2, 2), (1, 1)),
        (nn.ConvTranspose2d, 16, 3, (3, 3), (2, 2), (1, 1)),
    ]
    assert [m.output_padding for m in model.decoder if isinstance(m, nn.ConvTranspose2d)] == [(0, 0), (1, 1), (1, 1)]
    assert isinstance(model.decoder[-1], nn.Sigmoid)
    assert sum(isinstance(m, nn.ReLU) for m in model.modules()) == 4


def test_seed_model_parameter_count():
    # weights + biases of each layer, computed by hand
    expected = (3 * 16 * 9 + 16) + (16 * 32 * 9 + 32) + (32 * 64 * 49 + 64) \
        + (64 * 32 * 49 + 32) + (32 * 16 * 9 + 16) + (16 * 3 * 9 + 3)
    assert sum(p.numel() for p in SeedAutoencoder().parameters()) == expected == 210_947


def test_latent_and_output_shapes_and_range():
    model = SeedAutoencoder()
    x = torch.rand(5, 3, 32, 32)
    assert model.encoder(x).shape == (5, 64, 2, 2)  # 256 values for 3,072
    y = model(x)
    assert y.shape == (5, 3, 32, 32)
    assert y.min() >= 0 and y.max() <= 1


def test_every_registered_model_keeps_the_seed_latent_budget():
    x = torch.rand(2, 3, 32, 32)
    for name in MODELS:
        model = build_model(name)
        assert model.encoder(x).shape == (2, 64, 2, 2), name
        assert model(x).shape == x.shape, name
    assert build_model("wide-residual")(torch.rand(1, 3, 64, 64)).shape == (1, 3, 64, 64)
