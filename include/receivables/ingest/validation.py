"""Great Expectations 1.x: the file-kind suites under ``include/gx/expectations/``.

Two suites per kind, chosen for what GX does well at what it costs (about 1 s per expectation
per million rows on pandas, a fraction of that as SQL):

* ``<kind>_header`` — run on the file's header (a frame with the file's columns and no rows):
  every required column exists. A failure refuses the whole file.
* ``<kind>_staged`` — run as SQL on the staging table's good rows after the row checks and the
  set-based checks: ids present and unique, amounts positive, due dates not before issue dates,
  codes well formed. It is the independent gate before the merge; a failure refuses the file.

Results are stored in the GX project under ``$RECEIVABLES_HOME/gx`` and rendered as data docs
(``gx/uncommitted/data_docs/local_site/index.html``). The warehouse URL reaches GX through an
environment variable, so no password is ever written to ``great_expectations.yml``.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from receivables.paths import GX_SUITES_DIR

log = logging.getLogger(__name__)

URL_VARIABLE = "RECEIVABLES_GX_WAREHOUSE_URL"
FILES_SOURCE = "ledger_files"
WAREHOUSE_SOURCE = "warehouse"


@dataclass
class SuiteOutcome:
    """What a suite found: success, and a readable line per failed expectation."""

    suite: str
    success: bool
    failures: list[str] = field(default_factory=list)
    missing_columns: list[str] = field(default_factory=list)


def load_suite_definitions(directory: Path = GX_SUITES_DIR) -> dict[str, dict[str, Any]]:
    """The committed suite definitions, by suite name."""
    suites = {}
    for path in sorted(directory.glob("*.json")):
        definition = json.loads(path.read_text(encoding="utf-8"))
        if definition.get("name") != path.stem:
            raise ValueError(f"{path}: suite name {definition.get('name')!r} must be {path.stem!r}")
        suites[path.stem] = definition
    return suites


def _quiet_gx() -> None:
    # GX logs hundreds of INFO lines on import and draws progress bars: keep task logs readable.
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    logging.getLogger("great_expectations").setLevel(logging.WARNING)


class Validator:
    """A GX file context for one ingest task, with the committed suites loaded."""

    def __init__(self, gx_root: Path, warehouse_url: str, dialect: str):
        _quiet_gx()
        import great_expectations as gx
        from great_expectations.expectations.expectation_configuration import (
            ExpectationConfiguration,
        )

        self._gx = gx
        os.environ[URL_VARIABLE] = warehouse_url
        gx_root.mkdir(parents=True, exist_ok=True)
        self.context = gx.get_context(mode="file", project_root_dir=str(gx_root))
        self.context.variables.progress_bars = {"globally": False}
        self.context.variables.analytics_enabled = False
        self.context.variables.save()
        self.suites = {}
        for name, definition in load_suite_definitions().items():
            expectations = [
                ExpectationConfiguration(
                    type=e["type"], kwargs=e["kwargs"], meta=e.get("meta", {})
                ).to_domain_obj()
                for e in definition["expectations"]
            ]
            suite = gx.ExpectationSuite(
                name=name, expectations=expectations, meta=definition.get("meta", {})
            )
            self.suites[name] = self.context.suites.add_or_update(suite)
        self.files = self.context.data_sources.add_or_update_pandas(FILES_SOURCE)
        add_sql = {
            "sqlite": self.context.data_sources.add_or_update_sqlite,
            "postgresql": self.context.data_sources.add_or_update_postgres,
        }[dialect]
        self.warehouse = add_sql(WAREHOUSE_SOURCE, connection_string="${" + URL_VARIABLE + "}")

    def _checkpoint(
        self, suite_name: str, asset, batch_definition_name: str, result_format: str = "SUMMARY"
    ):
        gx = self._gx
        batch_definition = next(
            (b for b in asset.batch_definitions if b.name == batch_definition_name), None
        )
        if batch_definition is None:
            batch_definition = (
                asset.add_batch_definition_whole_dataframe(batch_definition_name)
                if hasattr(asset, "add_batch_definition_whole_dataframe")
                else asset.add_batch_definition_whole_table(batch_definition_name)
            )
        definition = self.context.validation_definitions.add_or_update(
            gx.ValidationDefinition(
                name=suite_name, data=batch_definition, suite=self.suites[suite_name]
            )
        )
        return self.context.checkpoints.add_or_update(
            gx.Checkpoint(
                name=f"{suite_name}_{result_format.lower()}",
                validation_definitions=[definition],
                actions=[gx.checkpoint.UpdateDataDocsAction(name="update_data_docs")],
                result_format=result_format,
            )
        )

    def _asset(self, source, name: str, table: str | None = None):
        if name in source.get_asset_names():
            return source.get_asset(name)
        if table is not None:
            return source.add_table_asset(name, table_name=table)
        return source.add_dataframe_asset(name)

    def validate_header(self, kind_name: str, columns: list[str], run_name: str) -> SuiteOutcome:
        """Check the file's columns against ``<kind>_header``."""
        import pandas as pd

        suite_name = f"{kind_name}_header"
        asset = self._asset(self.files, f"{kind_name}_file_header")
        checkpoint = self._checkpoint(suite_name, asset, "header", "SUMMARY")
        result = checkpoint.run(
            batch_parameters={"dataframe": pd.DataFrame(columns=columns)},
            run_id=self._gx.RunIdentifier(run_name=run_name),
        )
        outcome = self._outcome(suite_name, result)
        outcome.missing_columns = [
            r.expectation_config.kwargs["column"]
            for vr in result.run_results.values()
            for r in vr.results
            if not r.success and r.expectation_config.type == "expect_column_to_exist"
        ]
        return outcome

    def validate_staged(self, kind_name: str, good_rows_view: str, run_name: str) -> SuiteOutcome:
        """Check the staging table's good rows against ``<kind>_staged`` (as SQL).

        Success is established with GX's cheapest result format (about 40 % faster on a
        million rows); only a failing suite is run again for counts and examples.
        """
        suite_name = f"{kind_name}_staged"
        asset = self._asset(self.warehouse, f"{kind_name}_good_rows", table=good_rows_view)
        run_id = self._gx.RunIdentifier(run_name=run_name)
        quick = self._checkpoint(suite_name, asset, "good_rows", "BOOLEAN_ONLY").run(run_id=run_id)
        if quick.success:
            return SuiteOutcome(suite=suite_name, success=True)
        detailed = self._checkpoint(suite_name, asset, "good_rows").run(run_id=run_id)
        return self._outcome(suite_name, detailed)

    @staticmethod
    def _outcome(suite_name: str, result) -> SuiteOutcome:
        failures = []
        for validation in result.run_results.values():
            for r in validation.results:
                if r.success:
                    continue
                config = r.expectation_config
                args = ", ".join(
                    f"{k}={v}" for k, v in config.kwargs.items() if k not in ("batch_id",)
                )
                detail = ""
                if r.result and r.result.get("unexpected_count"):
                    sample = r.result.get("partial_unexpected_list", [])[:3]
                    detail = f": {r.result['unexpected_count']} unexpected, e.g. {sample}"
                elif r.exception_info and r.exception_info.get("raised_exception"):
                    detail = f": {r.exception_info.get('exception_message')}"
                failures.append(f"{config.type}({args}){detail}")
        return SuiteOutcome(suite=suite_name, success=bool(result.success), failures=failures)
