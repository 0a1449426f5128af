"""
### credit_model — the monthly credit scorecard

**Runs** on the first day of every month at 03:00 business time (`RECEIVABLES_MODEL_CRON`;
`none` for triggered runs only) and on demand, for the as-of date of its logical date.

**Does** build the training set from the warehouse's own history (behaviour features per
customer and month-end; target: reaching 90+ days past due within the next 6 months), hold out
the newest month-ends, fit a scorecard (monotone WoE bins, logistic regression, points),
measure AUC, KS, Gini and the population stability of the score, and approve the model when it
passes the policy's gate (`scores.min_auc`, `scores.max_psi`). Too little history keeps the
rules scorecard in use.

**Writes** `credit_models` (the registry: definition, metrics, decision) and the model card
`$RECEIVABLES_HOME/reports/models/credit-model-<date>.md`; `receivables_risk` scores with the
newest approved model.

**Sends** nothing but the failure alert to the data engineers.
"""

from __future__ import annotations

from pathlib import Path

from airflow.sdk import dag, task

from receivables.airflow import dag_defaults


@dag(
    dag_id=Path(__file__).stem,
    doc_md=__doc__,
    schedule=dag_defaults.timetable("RECEIVABLES_MODEL_CRON", "0 3 1 * *"),
    start_date=dag_defaults.START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=dag_defaults.default_args(),
    tags=["receivables", "risk", "model"],
)
def credit_model():
    @task
    def train_credit_model() -> dict:
        from receivables import jobs
        from receivables.airflow.runtime import run_step

        return run_step(jobs.train_credit_model)

    train_credit_model()


credit_model()
