"""Data the package reads at run time: the embedded CIFAR-10 sample (read with importlib.resources, so that
it works from a wheel, a zip or a clone alike)."""
