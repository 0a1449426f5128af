-- Per customer and currency on one as-of date: the outstanding and the part of it that is
-- substandard or worse, as exact whole cents, the worst days past due and its class. The
-- customer-level rule (more than the configured share substandard or worse, on the customer's
-- whole outstanding converted to the reporting currency) is decided in Python with exact
-- integers: see risk/classification.py.
SELECT a.customer_id,
       a.currency,
       {{ exact_cents('SUM(a.outstanding)') }} AS outstanding_cents,
       {{ exact_cents('SUM(CASE WHEN a.days_past_due >= ' ~ substandard_from
                      ~ ' THEN a.outstanding ELSE 0 END)') }} AS substandard_cents,
       MAX(a.days_past_due) AS worst_days_past_due,
       {{ band_case('MAX(a.days_past_due)', risk_classes) }} AS risk_class
FROM aging_snapshots a
WHERE a.as_of_date = {{ date_param('as_of') }}
GROUP BY a.customer_id, a.currency
ORDER BY a.customer_id, a.currency
