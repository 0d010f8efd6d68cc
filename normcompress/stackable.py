"""Which runs can train together as one stacked model (normcompress.stack), and in which stacks: rules
of their configurations only, so that a study can plan its stacks without torch (the app's does).
"""

from .config import TrainConfig

# Models whose step is the model alone: a rate term draws its noise from torch's global RNG and a codec
# model brings an entropy model of its own, so those runs train alone.
STACKABLE_MODELS = ("seed", "wide-residual", "pca-refine")
# What the runs of one stack share; everything else (norm, seed, lr, optimizer, schedule, epochs) is each run's.
SHARED = ("model", "image_size", "batch_size", "dataset", "data_dir", "limit", "device", "amp", "cuda_graph")
MAX_STACK = 64  # runs per stack: each adds its batch's activations to the step's memory


def why_not_stacked(config: TrainConfig) -> str | None:
    """Why this run cannot train in a stack, or None where it can."""
    if config.model not in STACKABLE_MODELS:
        return f"model {config.model} measures its own rate"
    if config.rate_lambda > 0:
        return "a rate term draws noise from one shared generator"
    if config.compile:
        return "a compiled model"
    return None


def stacks(configs: list[TrainConfig]) -> list[list[int]]:
    """The configs' indices in stacks of runs that can train together (in order, at most MAX_STACK
    each); a run that cannot, or has no partner, is a stack of one."""
    groups: dict[tuple, list[int]] = {}
    alone = []
    for index, config in enumerate(configs):
        if why_not_stacked(config):
            alone.append([index])
        else:
            groups.setdefault(tuple(getattr(config, key) for key in SHARED), []).append(index)
    chunks = [g[i : i + MAX_STACK] for g in groups.values() for i in range(0, len(g), MAX_STACK)]
    return sorted(chunks + alone)
