"""Scales snapped to a table that encoder and decoder share.

An entropy coder must see exactly the same distribution on both sides. A scale computed by a network
(the hyperprior's h_s, the context model's MLP) can differ in its last bit between two machines or two
batch layouts, so both coders snap each scale to the nearest of a few log-spaced values first: a
difference then matters only when it straddles the midpoint between two of them.
"""

import numpy as np


class ScaleTable:
    def __init__(self, low: float, high: float, levels: int) -> None:
        self.values = np.exp(np.linspace(np.log(low), np.log(high), levels))
        self._log_low, self._log_high = float(np.log(low)), float(np.log(high))
        self._per_log = (levels - 1) / (self._log_high - self._log_low)

    def index_of_log(self, log_scales: np.ndarray) -> np.ndarray:
        """Each log-scale's nearest entry (in log space), as int64 indexes; out-of-range ones go to the ends."""
        clipped = np.minimum(np.maximum(log_scales, self._log_low), self._log_high)  # np.clip costs more here
        return np.rint((clipped - self._log_low) * self._per_log).astype(np.int64)

    def snap(self, scales: np.ndarray) -> np.ndarray:
        """Each scale replaced by its nearest entry."""
        return self.values[self.index_of_log(np.log(scales))]
