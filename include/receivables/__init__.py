"""Accounts-receivable collection on Apache Airflow."""
