"""A run's model, rebuilt from its configuration and its last checkpoint's weights (torch, when asked)."""

from ..errors import StoreError


def load_model(run, device="cpu"):
    """A run's model with its last checkpoint's weights, in eval mode. A checkpoint that holds no
    weights, another model's weights or non-finite ones is a StoreError naming the run."""
    import torch

    from ..model import build_model

    config = run.train_config()
    model = build_model(config.model).to(device)
    weights = run.load_checkpoint(device).get("model")
    try:
        if not isinstance(weights, dict):
            raise TypeError("no weights")
        model.load_state_dict(weights)
    except (RuntimeError, TypeError, KeyError) as exc:
        reason = "it holds no weights" if isinstance(exc, TypeError) else f"they are not a {config.model} model's"
        raise StoreError(
            f"run {run.id} is damaged: checkpoint.pt does not hold this run's weights ({reason})"
        ) from None
    if not all(torch.isfinite(t).all() for t in model.state_dict().values()):
        raise StoreError(f"run {run.id} is damaged: checkpoint.pt holds non-finite weights")
    return model.eval()
