"""`make bench`: run every benchmarks/bench_*.py module's main() and print its figures."""

import importlib
import pkgutil
import sys
from pathlib import Path


def run_all(selected: list[str]) -> None:
    here = Path(__file__).parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    for name in names:
        if selected and name not in selected:
            continue
        print(f"== {name}", flush=True)
        importlib.import_module(f"benchmarks.{name}").main()


if __name__ == "__main__":
    run_all(sys.argv[1:])
