"""Run by tests/test_tui_torch_free.py in a fresh interpreter: the app trains a study (its runs in child
processes), exports the chart and the runs, and then prints which heavy modules its own process holds."""

import asyncio
import resource
import sys
from pathlib import Path

from normcompress.runs import RunStore
from normcompress.study_config import StudyConfig
from normcompress_tui import exports
from normcompress_tui.app import NormcompressApp

HEAVY = ("torch", "torchvision", "scipy", "matplotlib")


async def main(root: Path) -> None:
    store = RunStore(root)
    app = NormcompressApp(store)
    async with app.run_test(size=(120, 36)) as pilot:
        study = StudyConfig.of_norms(["L2", "L1"], 1, epochs=1, dataset="synthetic", limit=64, devices=["cpu"])
        app.controller.start_study(study)
        while app.controller.training:
            await pilot.pause(0.2)
        await pilot.press("space")  # overlay a run, so that the chart has curves to export
        app.main.action_export_chart()
        exports.runs_csv(app, store)
        while len(list((root / "exports").glob("*"))) < 3:  # PNG, SVG, CSV
            await pilot.pause(0.2)
    print("runs:", len(store.runs()), "exports:", len(list((root / "exports").glob("*"))))
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")
    print("heavy:", ",".join(m for m in HEAVY if m in sys.modules) or "none")


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
