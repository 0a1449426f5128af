"""The only part of the package that imports Airflow: assets, DAG defaults, context, callbacks.

DAG files import :mod:`receivables.airflow.dag_defaults` (cheap) at parse time; everything else
is imported inside task bodies.
"""
