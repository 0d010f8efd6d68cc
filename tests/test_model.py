import torch
from torch import nn

from normcompress.model import CODEC_MODELS, MODELS, SeedAutoencoder, build_model


def test_seed_model_layers_match_the_original_study():
    model = SeedAutoencoder()
    convs = [
        (type(m), m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding)
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))
    ]
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
    expected = (
        (3 * 16 * 9 + 16)
        + (16 * 32 * 9 + 32)
        + (32 * 64 * 49 + 64)
        + (64 * 32 * 49 + 32)
        + (32 * 16 * 9 + 16)
        + (16 * 3 * 9 + 3)
    )
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
        # 64x2x2, or 256x1x1 for pca-refine; a codec model's budget is bits (768 values it can silence)
        assert model.encoder(x)[0].numel() == (768 if name in CODEC_MODELS else 256), name
        assert model(x).shape == x.shape, name
    for name in ("wide-residual", "pca-refine"):
        assert build_model(name)(torch.rand(1, 3, 64, 64)).shape == (1, 3, 64, 64)


def test_pca_refine_starts_as_its_pca_and_only_takes_whole_tiles():
    from normcompress.config import TrainConfig
    from normcompress.errors import UsageError
    from normcompress.pca import PcaModel, fit_pca

    images = (torch.rand(300, 3, 32, 32) * 255).to(torch.uint8)
    model = build_model("pca-refine")
    model.initialise(images, rate_lambda=0.0)
    x = images[:8].float() / 255
    assert torch.allclose(model(x), PcaModel(fit_pca(images, 256))(x), atol=1e-5)  # the correction starts at zero
    try:
        TrainConfig(model="pca-refine", image_size=48, dataset="folder:x").validated()
        raise AssertionError("48 px accepted")
    except UsageError as exc:
        assert "multiple of 32" in str(exc)
