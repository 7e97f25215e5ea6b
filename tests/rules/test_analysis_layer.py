"""analysis sits above safety (issue 17, "Where it lives"): the apps below it never import it.

The outbox in trial.services reaches the analysis code by name only (settings
TRIAL_COMPUTATION_RUN and TRIAL_RECOMPUTE_TASK). pyproject.toml's import-linter contracts say
the same; this test reads every module of the lower apps, imports inside functions
included, so a run of pytest alone catches a regression too.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BELOW_ANALYSIS = ("core", "trial", "patients", "dosing", "safety", "cleaning")


def analysis_imports(source: str) -> list[tuple[int, str]]:
    """(line, module) of every import of the analysis package in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [(node.lineno, name) for name in names if name == "analysis" or name.startswith("analysis.")]
    return found


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from analysis.services import computation_run", [(1, "analysis.services")]),
        ("import analysis.tasks", [(1, "analysis.tasks")]),
        ("def f():\n    from analysis import services\n", [(2, "analysis")]),
        ("from trial.services import computation_request\nimport analysisx\n", []),
        ('run = import_string("analysis.services.computation_run")', []),  # by name: allowed
    ],
)
def test_the_scan_finds_analysis_imports(source: str, expected: list[tuple[int, str]]) -> None:
    assert analysis_imports(source) == expected


def test_no_app_below_analysis_imports_it() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for app in BELOW_ANALYSIS
        for path in sorted((ROOT / app).rglob("*.py"))
        for line, module in analysis_imports(path.read_text(encoding="utf-8"))
    ]
    assert not offenders, offenders
