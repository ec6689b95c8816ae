"""How fast the OTLP inbox writes a burst's rows: with and without the flattening process.

The shared load generator's bodies (../shared/tools/otlp_load.py: traces of 20 spans, 8
attributes, batches of 512) are put into a new store's inbox as a burst leaves them
(acknowledged, in the journal, no row written), then the time until every row is written
is measured (``Inbox.settle``), in this process, with the flattening process
(``OBSERVATORY_OTLP_FLATTEN_PROCESS``, started before the clock) and without it, in turn.
No HTTP and no client share the machine: this is the drain alone, which the end-to-end
benchmark (otlp_ingest.py) adds to the burst's own time.

    python benchmarks/otlp_drain.py [--spans 100000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT.parent / "shared" / "tools"


def drain(bodies: list[bytes], process: bool) -> tuple[float, int, float]:
    """Seconds to write ``bodies`` from the inbox, spans stored, and this process's CPU
    seconds meanwhile (the flattening process's are its own)."""
    from workbench.intake.local import LocalIntake
    from workbench.store import Store

    os.environ["OBSERVATORY_OTLP_FLATTEN_PROCESS"] = "1" if process else "0"
    with tempfile.TemporaryDirectory() as tmp:
        intake = LocalIntake(Store(Path(tmp) / "drain.duckdb"), ci_env={}, block=False)
        intake.use_inbox()
        # Written only when settle() asks: as if a request had just come, a quiet moment
        # is far off (without an arrival the inbox would start at once).
        intake.inbox.quiet_s, intake.inbox._last_arrival = 600, time.monotonic()
        for body in bodies:
            intake.inbox.put("traces", body)
        if process:
            intake._flattener.tables([])  # (its start and imports: before the clock)
        start, cpu = time.perf_counter(), os.times()
        if not intake.inbox.settle(600):
            raise SystemExit("the inbox did not drain in 600 s")
        seconds, after = time.perf_counter() - start, os.times()
        stored = int(intake.store.sql("SELECT count(*) AS n FROM spans")["n"].item())
        intake.close()
        intake.store.close()
    return seconds, stored, (after.user - cpu.user) + (after.system - cpu.system)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=100_352, help="spans in the burst")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (medians are kept)")
    args = parser.parse_args()
    if not (TOOL / "otlp_load.py").exists():
        raise SystemExit(f"{TOOL / 'otlp_load.py'}: the shared load generator is not here")
    sys.path.insert(0, str(TOOL))
    import otlp_load

    os.environ["OBSERVATORY_OTLP_DEFER_S"] = "600"
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; {args.spans:,} spans in requests of 512")
    bodies = [b for b, _ in otlp_load.build_bodies(args.spans, 512, "drain", False)]
    figures: dict[str, list[float]] = {"with the process": [], "in the inbox's thread": []}
    for _ in range(args.rounds):
        for name, process in (("with the process", True), ("in the inbox's thread", False)):
            seconds, stored, cpu = drain(bodies, process)
            if stored != args.spans:
                raise SystemExit(f"{name}: {stored} spans stored, {args.spans} sent")
            figures[name].append(seconds)
            print(f"  {name:<22} {seconds:5.2f} s = {stored / seconds:>8,.0f} spans/s "
                  f"(server CPU {cpu:.2f} s)", flush=True)
    medians = {name: statistics.median(v) for name, v in figures.items()}
    for name, m in medians.items():
        print(f"{name:<24} median {m:5.2f} s = {args.spans / m:>8,.0f} spans/s")
    with_process, without = medians["with the process"], medians["in the inbox's thread"]
    print(f"with the process: {without / with_process:.2f}x the rate")


if __name__ == "__main__":
    main()
