-- Per customer and currency on the as-of date, what the warnings look at: outstanding,
-- overdue, worst days past due, invoices that became overdue since the previous day, and the
-- worst days past due of the previous day.
SELECT a.customer_id,
       a.currency,
       SUM(a.outstanding) AS outstanding,
       SUM(CASE WHEN a.days_past_due > 0 THEN a.outstanding ELSE 0 END) AS overdue,
       MAX(a.days_past_due) AS worst_dpd,
       SUM(CASE WHEN a.days_past_due > 0 AND COALESCE(p.days_past_due, 0) = 0
                THEN 1 ELSE 0 END) AS newly_overdue,
       SUM(CASE WHEN a.days_past_due > 0 AND COALESCE(p.days_past_due, 0) = 0
                THEN a.outstanding ELSE 0 END) AS newly_overdue_amount,
       MAX(w.worst_dpd) AS previous_worst_dpd
FROM aging_snapshots a
LEFT JOIN aging_snapshots p
       ON p.invoice_id = a.invoice_id AND p.as_of_date = {{ date_param('previous') }}
LEFT JOIN (
    SELECT customer_id, currency, MAX(days_past_due) AS worst_dpd
    FROM aging_snapshots
    WHERE as_of_date = {{ date_param('previous') }}
    GROUP BY customer_id, currency
) w ON w.customer_id = a.customer_id AND w.currency = a.currency
WHERE a.as_of_date = {{ date_param('as_of') }}
GROUP BY a.customer_id, a.currency
