"""What an installed wheel needs: every file the program reads at run time is package data, read
through importlib.resources, never looked up beside a checkout (.ci/run also installs the wheel
elsewhere and trains offline)."""

import fnmatch
import subprocess
import sys
import tomllib
from pathlib import Path

from normcompress import data as data_module

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("normcompress", "normcompress_tui")


def test_every_data_file_in_the_packages_is_declared_package_data():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    missing = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*"):
            if path.is_dir() or path.suffix in (".py", ".pyc") or "__pycache__" in path.parts:
                continue
            owner = ".".join(path.parent.relative_to(ROOT).parts)
            if not any(fnmatch.fnmatch(path.name, glob) for glob in declared.get(owner, [])):
                missing.append(str(path.relative_to(ROOT)))
    assert not missing, f"not in [tool.setuptools.package-data]: {missing}"


def test_the_sample_is_read_from_inside_the_package():
    assert "normcompress/assets" in str(data_module.SAMPLE).replace("\\", "/")
    assert not (ROOT / "data" / "cifar10-sample.npz").exists()  # one copy, the one the wheel ships


def test_both_commands_print_the_installed_version():
    from importlib.metadata import version

    for command in ("normcompress", "normcompress-tui"):
        result = subprocess.run(
            [str(Path(sys.executable).parent / command), "--version"], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"{command} {version('normcompress')}"
