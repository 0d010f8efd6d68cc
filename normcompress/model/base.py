"""What training and the codec ask of every model, so that neither switches on the model's kind."""

import torch
from torch import nn


class Autoencoder(nn.Module):
    """An encoder to a latent and a decoder back, with what a model may add: a start fitted to the
    training images, learning rates of its own for some parameters, and an entropy model of its own."""

    OWN_RATE = False  # it measures its own rate (rate_forward) and codes its latents itself (the hyperprior)

    encoder: nn.Module
    decoder: nn.Module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))

    def initialise(self, images: torch.Tensor, rate_lambda: float) -> None:
        """Set up from the training images (uint8) before the first step; most models start random."""

    def parameter_groups(self, lr: float) -> list[dict]:
        """The optimizer's parameter groups: every parameter at the learning rate, unless a model says otherwise."""
        return [{"params": list(self.parameters()), "lr": lr}]

    def rate_forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The reconstruction and the rate in bits per pixel (models with OWN_RATE only)."""
        raise NotImplementedError(f"{type(self).__name__} measures no rate of its own")

    def image_bits(self, images: torch.Tensor) -> torch.Tensor:
        """Each image's bits once its latents are rounded as the codec rounds them (OWN_RATE models only)."""
        raise NotImplementedError(f"{type(self).__name__} measures no rate of its own")
