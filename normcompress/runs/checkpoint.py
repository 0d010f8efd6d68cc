"""A run's checkpoint: the training state saved after each epoch and restored on a resume, and the
model rebuilt from its configuration and last weights (torch, when asked)."""

from ..errors import StoreError


def training_state(model, prior, optimizer, scheduler, config, epoch: int) -> dict:
    """What checkpoint.pt holds after `epoch`: everything a resume needs to go on as if never stopped."""
    import torch

    return {
        "model": model.state_dict(),
        "optimizer": portable(optimizer.state_dict()),
        "epoch": epoch,
        "rng": torch.get_rng_state(),
        "norm": config.norm,
        "model_name": config.model,
        **({"prior": prior.state_dict()} if prior is not None else {}),
        **({"scheduler": scheduler.state_dict()} if scheduler is not None else {}),
    }


def portable(optimizer_state: dict) -> dict:
    """The optimizer's state with plain-number learning rates and no capture flag: a run whose step was
    replayed from a CUDA graph (normcompress.step) resumes on any device, with a graph or without."""
    groups = [
        {**group, "lr": float(group["lr"]), **({"capturable": False} if "capturable" in group else {})}
        for group in optimizer_state["param_groups"]
    ]
    return {**optimizer_state, "param_groups": groups}


def restore_training(run, state: dict, model, prior, optimizer, scheduler, config) -> int:
    """Load a checkpoint into the model, prior and optimizer; return its epoch. A checkpoint that does
    not fit this run (another model's weights, missing parts) is reported as damage, never trained on."""
    import torch

    try:
        epoch = state["epoch"]
        if not isinstance(epoch, int) or not 0 <= epoch <= config.epochs:
            raise ValueError(f"epoch {epoch!r}")
        model.load_state_dict(state["model"])
        if prior is not None:
            prior.load_state_dict(state["prior"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        reason = f"lacks {exc}" if isinstance(exc, KeyError) else type(exc).__name__
        raise StoreError(f"run {run.id} is damaged: checkpoint.pt does not fit the run ({reason})") from None
    return epoch


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
