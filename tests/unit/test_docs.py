"""The documents in docs/ against the code: what the contract lists is what the code has.

A setting, policy key, DAG or export column added to the code without its line in
docs/contract.md fails here, and so does a link between the documents that leads nowhere.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from pydantic import BaseModel

from receivables.aging import InvoiceFacts, compute_snapshot
from receivables.config import Policy
from receivables.exports import EXPORTS, export
from receivables.paths import DAGS_DIR, REPO_ROOT
from receivables.risk.models import score_customers
from tests.helpers import load_ledger

DOCS = REPO_ROOT / "docs"
CONTRACT = DOCS / "contract.md"
#: Set by the code for its own use (Great Expectations reads the warehouse URL from it).
INTERNAL_VARIABLES = {"RECEIVABLES_GX_WAREHOUSE_URL"}


def _section(text: str, heading: str) -> str:
    """The text under ``heading`` (a Markdown heading line) up to the next heading of the same
    or a higher level."""
    lines = text.splitlines()
    start = lines.index(heading)
    level = len(heading) - len(heading.lstrip("#"))
    body = []
    for line in lines[start + 1 :]:
        hashes = len(line) - len(line.lstrip("#"))
        if line.startswith("#") and hashes <= level:
            break
        body.append(line)
    return "\n".join(body)


def _policy_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys.extend(_policy_keys(annotation, f"{prefix}{name}."))
        else:
            keys.append(f"{prefix}{name}")
    return keys


def test_every_policy_key_is_in_the_contract():
    table = _section(CONTRACT.read_text(encoding="utf-8"), "### 2.3 The policy file")
    keys = _policy_keys(Policy)
    assert "classification.substandard_share" in keys  # the walk reaches the leaves
    missing = [key for key in keys if f"`{key}`" not in table]
    assert missing == []


def test_every_environment_variable_the_code_reads_is_in_the_contract():
    sources = [*REPO_ROOT.joinpath("include").rglob("*.py"), *DAGS_DIR.glob("*.py")]
    used = set()
    for path in sources:
        used |= set(re.findall(r"(?<![A-Z_])RECEIVABLES_[A-Z_]+", path.read_text("utf-8")))
    assert "RECEIVABLES_HOME" in used
    table = _section(CONTRACT.read_text(encoding="utf-8"), "### 2.1 Environment")
    missing = sorted(v for v in used - INTERNAL_VARIABLES if f"`{v}`" not in table)
    assert missing == []


def test_every_dag_is_in_the_contract():
    table = _section(CONTRACT.read_text(encoding="utf-8"), "## 4. The DAGs")
    dag_ids = sorted(path.stem for path in DAGS_DIR.glob("*.py"))
    assert "receivables_risk" in dag_ids
    assert [d for d in dag_ids if f"| `{d}` |" not in table] == []


def _documented_columns() -> dict[str, list[str]]:
    """Export name -> its columns as the contract's export table lists them, in order."""
    table = _section(CONTRACT.read_text(encoding="utf-8"), "### 5.1 Exports")
    found = {}
    for line in table.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) != 4 or not cells[0].startswith("`"):
            continue
        if cells[1].startswith("planned"):
            continue
        groups = re.findall(r"`([^`]+)`", cells[2])
        found[cells[0].strip("`")] = [c.strip() for g in groups for c in g.split(",")]
    return found


def test_the_export_columns_are_the_ones_the_contract_lists(engine, tmp_path):
    as_of = dt.date(2024, 6, 30)
    load_ledger(
        engine,
        [InvoiceFacts("I1", "C1", dt.date(2024, 5, 1), dt.date(2024, 5, 31), Decimal("10.00"))],
    )
    policy = Policy()
    compute_snapshot(engine, as_of, policy.aging)
    score_customers(engine, as_of, policy.scores)
    documented = _documented_columns()
    assert sorted(documented) == sorted(EXPORTS)
    for name, columns in documented.items():
        out = tmp_path / f"{name}.csv"
        export(name, engine, as_of, out)
        header = out.read_text(encoding="utf-8").splitlines()[0]
        assert header.split(",") == columns, name


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@pytest.mark.parametrize("document", ["design.md", "contract.md", "formulas.md"])
def test_links_between_the_documents_lead_somewhere(document):
    text = (DOCS / document).read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    assert links, "the documents point at each other"
    broken = []
    for link in links:
        if re.match(r"[a-z]+:", link):
            continue
        target, _, anchor = link.partition("#")
        path = (DOCS / target) if target else DOCS / document
        if not path.is_file():
            broken.append(link)
            continue
        if anchor:
            headings = [
                line.lstrip("#").strip()
                for line in path.read_text(encoding="utf-8").splitlines()
                if line.startswith("#")
            ]
            if anchor not in {_slug(h) for h in headings}:
                broken.append(link)
    assert broken == []


def test_the_slug_follows_github():
    assert _slug("5. The `receivables` command and the exports") == (
        "5-the-receivables-command-and-the-exports"
    )
    assert _slug("2.3 The policy file") == "23-the-policy-file"


def test_the_contract_sections_code_comments_cite_exist():
    headings = [
        line for line in CONTRACT.read_text(encoding="utf-8").splitlines() if line.startswith("## ")
    ]
    numbers = [h.split()[1].rstrip(".") for h in headings]
    assert numbers == ["1", "2", "3", "4", "5", "6"]
    cited = set()
    for path in [
        *REPO_ROOT.joinpath("include").rglob("*.py"),
        *REPO_ROOT.joinpath("sql").rglob("*"),
    ]:
        if path.is_file():
            cited |= set(re.findall(r"docs/contract\.md §(\d+)", path.read_text("utf-8")))
    assert cited <= set(numbers)
