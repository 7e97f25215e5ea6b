"""The repository stands alone (issue 16 item 21): no tracked file points a reader at the
team's ../shared folder, which a person cloning the repository does not have. The rules
and the contract are docs/protocol.md and docs/api.md; reference data ships in the repo."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUTSIDE = re.compile(
    r"\.\./shared|shared/(?:PROTOCOL|API|STYLE|README|reference|seed|tools|hooks)|(?<![\w/])(?:PROTOCOL|API|STYLE)\.md"
)


def test_no_tracked_file_refers_to_the_shared_folder() -> None:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    offenders = []
    for name in files:
        if name.startswith("static/vendor/") or name == "tests/rules/test_repository_stands_alone.py":
            continue
        path = ROOT / name
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue
        offenders += [f"{name}:{n}" for n, line in enumerate(text.splitlines(), 1) if OUTSIDE.search(line)]
    assert not offenders, offenders


def test_the_docs_it_points_to_exist() -> None:
    for doc in ("protocol.md", "api.md", "bundle.md", "exports.md", "survival-reference.md"):
        assert (ROOT / "docs" / doc).is_file(), doc
    readme = (ROOT / "README.md").read_text()
    assert "docs/protocol.md" in readme and "docs/api.md" in readme and "/accounts/login/" in readme
