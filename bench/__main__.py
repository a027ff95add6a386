"""`python -m bench`: measure this bot against the straightforward one, print a table."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from bench.run import BOTS, run


def table(report: dict[str, Any]) -> str:
    results = {r["name"]: r for r in report["results"]}
    ours, base = results.get("this bot"), results.get("straightforward bot")
    memory_turns = sorted({int(n) for r in results.values() for n in r["memory"]})
    rows: list[tuple[str, str, str, str]] = []

    def row(label: str, key: str, fmt: str, better_high: bool) -> None:
        values = [fmt.format(r[key]) if r else "–" for r in (ours, base)]
        ratio = "–"
        if ours and base and ours[key] and base[key]:
            ratio = f"{(ours[key] / base[key]) if better_high else (base[key] / ours[key]):.2f}×"
        rows.append((label, *values, ratio))

    load = report["load"]
    row(
        f"turns per second ({load['threads']} threads × {load['turns_per_thread']} turns)",
        "turns_per_second",
        "{:.1f}",
        True,
    )
    if load.get("rounds", 1) > 1:
        spread = [
            f"{min(r['rounds_turns_per_second']):.0f} to {max(r['rounds_turns_per_second']):.0f}"
            if r
            else "–"
            for r in (ours, base)
        ]
        label = f"turns per second, lowest to highest of {load['rounds']} rounds"
        rows.append((label, *spread, "–"))
    row("turn latency p50 (ms)", "turn_ms_p50", "{:.0f}", False)
    row("turn latency p99 (ms)", "turn_ms_p99", "{:.0f}", False)
    row("acknowledgement p50 (ms)", "ack_ms_p50", "{:.1f}", False)
    row("acknowledgement p99 (ms)", "ack_ms_p99", "{:.1f}", False)
    row("acknowledgement max (ms)", "ack_ms_max", "{:.1f}", False)
    row("bot CPU per turn (ms)", "cpu_ms_per_turn", "{:.1f}", False)
    row("Redis CPU per turn (ms)", "redis_cpu_ms_per_turn", "{:.2f}", False)
    row("stand-ins + load generator CPU (cores)", "bench_cpu_share", "{:.2f}", False)
    rows[-1] = (*rows[-1][:3], "–")  # the environment, not a bot's merit
    for n in memory_turns:
        cells = []
        for r in (ours, base):
            m = (r and r["memory"].get(str(n))) or (r and r["memory"].get(n))
            cells.append(
                f"{m['bytes'] / 1024:.0f} KiB = {m['ratio']:.1f}× its text "
                f"({m['text_bytes'] / 1024:.1f} KiB)"
                if m
                else "–"
            )
        ratio = "–"
        m_ours = ours and (ours["memory"].get(str(n)) or ours["memory"].get(n))
        m_base = base and (base["memory"].get(str(n)) or base["memory"].get(n))
        if m_ours and m_base:
            ratio = f"{m_base['bytes'] / m_ours['bytes']:.1f}× less"
        rows.append((f"Redis memory, one thread after {n} turns", *cells, ratio))
    header = ("measure", "this bot", "straightforward bot", "ratio")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    m = report["machine"]
    lines.append("")
    lines.append(
        f"Medians of {load.get('rounds', 1)} rounds per bot (memory: one thread, once). "
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, "
        f"Redis {m['redis']}, {m['system']}."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=30)
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--memory-turns", default="10,40")
    parser.add_argument(
        "--rounds", type=int, default=3, help="load rounds per bot; figures are medians"
    )
    parser.add_argument("--bots", default=",".join(BOTS), help="comma-separated")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()
    report = asyncio.run(
        run(
            threads=args.threads,
            turns=args.turns,
            memory_turns=tuple(int(n) for n in args.memory_turns.split(",")),
            bots=[b.strip() for b in args.bots.split(",")],
            rounds=args.rounds,
        )
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    print(table(report))


if __name__ == "__main__":
    main()
