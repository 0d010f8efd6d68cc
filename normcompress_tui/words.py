"""The app's words for the engine's messages: the engine names options as the CLI spells them
(`--rate-lambda`), the app's forms name them by their labels (`Rate λ`)."""

import re

FORM_LABELS = {
    "--norms": "Norms",
    "--norm": "Norm",
    "--epochs": "Epochs",
    "--batch-size": "Batch",
    "--lr": "LR",
    "--seeds": "Seeds",
    "--seed": "Seed",
    "--dataset": "Data",
    "--device": "Device",
    "--model": "Model",
    "--optimizer": "Optim",
    "--schedule": "Sched",
    "--limit": "Limit",
    "--image-size": "Size",
    "--rate-lambda": "Rate λ",
    "--ray": "Ray",
    "--grid": "Grid",
}
_FLAG = re.compile(r"--[a-z][a-z-]*")


def in_form_words(message: str) -> str:
    """`--rate-lambda must be ...` as `Rate λ must be ...`; flags the forms do not have stay as they are."""
    return _FLAG.sub(lambda match: FORM_LABELS.get(match.group(0), match.group(0)), message)
