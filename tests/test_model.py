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


def test_the_pca_projections_are_the_convolutions_they_replace():
    """pca-refine and hyperprior compute their 32x32-tile projections as matrix products; on an image of
    2x3 tiles, in either memory layout, they give torch's convolutions' values and gradients, and keep the
    convolutions' parameter names and shapes, so checkpoints saved before still load."""
    from torch.nn import functional as F

    from normcompress.model.networks import TileConv2d, TileConvTranspose2d

    torch.manual_seed(0)
    encode, decode = TileConv2d(5), TileConvTranspose2d(5)
    for layout in (torch.contiguous_format, torch.channels_last):
        image = torch.rand(2, 3, 64, 96).contiguous(memory_format=layout).requires_grad_()
        latent = encode(image)
        assert torch.allclose(latent, F.conv2d(image, encode.weight, stride=32), atol=1e-5)
        assert torch.allclose(decode(latent), F.conv_transpose2d(latent, decode.weight, stride=32), atol=1e-5)
        ours = torch.autograd.grad(decode(encode(image)).square().sum(), (image, encode.weight, decode.weight))
        reference = F.conv_transpose2d(F.conv2d(image, encode.weight, stride=32), decode.weight, stride=32)
        theirs = torch.autograd.grad(reference.square().sum(), (image, encode.weight, decode.weight))
        for a, b in zip(ours, theirs, strict=True):
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-4)
    shapes = {k: tuple(v.shape) for k, v in build_model("pca-refine").state_dict().items() if "project" in k}
    assert shapes == {"encoder.project.weight": (256, 3, 32, 32), "decoder.project.weight": (256, 3, 32, 32)}
