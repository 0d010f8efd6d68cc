"""Print the table of outcomes of the hostile-input suite: every damaged run file against every command
that reads a store, and every path-traversal reference against every command that takes one.

Run: python scripts/hostile_census.py   (about two minutes; the same cases as tests/test_hostile.py)
"""

import shutil
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.hostile import census, fingerprint, invoke  # noqa: E402
from tests.test_hostile import TINY, traversal_refs  # noqa: E402

from normcompress.events import EpochEnd  # noqa: E402
from normcompress.runs import RunStore  # noqa: E402
from normcompress.train import TrainConfig, train  # noqa: E402

TRAVERSAL_COMMANDS = [["runs", "rm", "--yes"], ["runs", "show"], ["eval"], ["train", "--resume"], ["runs", "compare"]]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        template = root / "template"
        cancel = threading.Event()
        train(TrainConfig(**TINY, epochs=2), RunStore(template), lambda e: isinstance(e, EpochEnd) and cancel.set(),
              cancel)
        train(TrainConfig(**TINY, epochs=1), RunStore(template))
        work = root / "work"
        work.mkdir()
        from PIL import Image

        Image.new("RGB", (40, 40), "gray").save(work / "image.png")
        damaged, bad = census(template, work)
        traversal: Counter = Counter()
        store = root / "store"
        shutil.copytree(template, store)
        victim = root / "victim"
        shutil.copytree(next(store.iterdir()), victim)
        run_id = sorted(p.name for p in store.iterdir())[0]
        (store / (run_id[:-6] + "ffffff")).symlink_to(victim, target_is_directory=True)
        import os

        os.environ["NORMCOMPRESS_RUNS_DIR"] = str(store)
        before = fingerprint(root, skip={work})
        for command in TRAVERSAL_COMMANDS:
            for ref in traversal_refs(store, run_id, victim):
                outcome, _, text = invoke([*command, ref])
                if fingerprint(root, skip={work}) != before:
                    outcome = "data lost"
                    bad.append(f"{command} {ref!r}: {text.strip()[-200:]}")
                traversal[outcome] += 1
    print("| inputs | tried | clean errors | succeeded | tracebacks | hangs | data lost |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, counts in (("damaged run files x commands", damaged), ("traversal references x commands", traversal)):
        print(f"| {label} | {sum(counts.values())} | {counts['error']} | {counts['ok']} | {counts['traceback']} | "
              f"{counts['hang']} | {counts['data lost']} |")
    for line in bad:
        print("BAD:", line)


if __name__ == "__main__":
    main()
