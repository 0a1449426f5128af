-- The operations dashboard's book: the aging snapshots of the given days (`days` names their
-- bound dates: day_0, day_1, …) by day, aging bucket and currency — open invoices, what is
-- outstanding and the part of it past due (days past due > 0), in whole cents. The dashboard's
-- totals, aging distribution and overdue trend all add up these rows, so they reconcile.
SELECT as_of_date,
       bucket,
       currency,
       COUNT(*) AS invoices,
       {{ exact_cents('SUM(outstanding)') }} AS outstanding,
       {{ exact_cents('SUM(CASE WHEN days_past_due > 0 THEN outstanding ELSE 0 END)') }} AS overdue
FROM aging_snapshots
WHERE as_of_date IN ({% for day in days %}{{ date_param(day) }}{% if not loop.last %}, {% endif %}{% endfor %})
GROUP BY as_of_date, bucket, currency
ORDER BY as_of_date, currency, bucket;
