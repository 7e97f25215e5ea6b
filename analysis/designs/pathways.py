"""Dose-transition pathways (Yap C, Billingham LJ, Cheung YK, Craddock C, O'Quigley J.
Clin Cancer Res 2017;23:7440-7447; R escalation's get_dose_paths): for the next one or
two cohorts, every possible number of DLTs and the decision the design then takes.

Pure module: no Django import. Works for any design of common.py. The tree's root is
the decision on the current data; each child treats the root's open places at the
recommended level, with 0, 1, ... of them having a DLT, and holds the decision on the
data so extended. A branch ends early when the design ends the trial.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from analysis.designs.common import Design, DesignResult, LevelOutcome


@dataclass(frozen=True)
class PathNode:
    treated_level: int | None  # the level the cohort was treated at (None at the root)
    cohort_size: int
    cohort_dlts: int
    result: DesignResult
    children: tuple[PathNode, ...]

    def walk(self) -> list[tuple[tuple[int, ...], PathNode]]:
        """Every node with its path of DLT counts from the root, depth first."""
        out: list[tuple[tuple[int, ...], PathNode]] = []

        def visit(node: PathNode, path: tuple[int, ...]) -> None:
            out.append((path, node))
            for child in node.children:
                visit(child, (*path, child.cohort_dlts))

        visit(self, ())
        return out


def dose_paths(
    design: Design,
    outcomes: Sequence[LevelOutcome],
    current_level: int | None,
    cohorts: int = 2,
) -> PathNode:
    """The tree of decisions for the next `cohorts` cohorts (1 or 2 for a page; any
    small number works, the tree has up to (cohort size + 1) ** cohorts leaves)."""
    if cohorts < 0:
        raise ValueError("cohorts: cannot be negative")
    root = design.decide(outcomes, current_level)
    return _grow(design, list(outcomes), root, None, 0, 0, cohorts)


def _grow(
    design: Design,
    outcomes: list[LevelOutcome],
    result: DesignResult,
    treated: int | None,
    size: int,
    dlts: int,
    depth: int,
) -> PathNode:
    children: list[PathNode] = []
    if depth > 0 and not result.finished and result.open_slots:
        level, slots = result.open_slots[0]
        for y in range(slots + 1):
            nxt = list(outcomes)
            o = nxt[level - 1]
            nxt[level - 1] = LevelOutcome(o.evaluable + slots, o.dlts + y, o.pending, o.backfill)
            child = design.decide(nxt, level)
            children.append(_grow(design, nxt, child, level, slots, y, depth - 1))
    return PathNode(treated, size, dlts, result, tuple(children))
