-- Per customer and currency on one as-of date: the outstanding, the part of it that is
-- substandard or worse, and the worst days past due. The customer-level rule (more than the
-- configured share substandard or worse, on the customer's whole outstanding converted to the
-- reporting currency) is decided in Python with exact integers: see risk/classification.py.
SELECT a.customer_id,
       a.currency,
       SUM(a.outstanding) AS outstanding,
       SUM(CASE WHEN a.days_past_due >= {{ substandard_from }} THEN a.outstanding ELSE 0 END)
           AS substandard_or_worse,
       MAX(a.days_past_due) AS worst_days_past_due
FROM aging_snapshots a
WHERE a.as_of_date = {{ date_param('as_of') }}
GROUP BY a.customer_id, a.currency
ORDER BY a.customer_id, a.currency
