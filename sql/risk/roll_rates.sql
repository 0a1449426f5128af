-- The bucket-to-bucket matrix between two consecutive month-end aging snapshots, by amount
-- (outstanding at the earlier month-end) and by count, per currency. An invoice open at the
-- earlier month-end and absent from the later one was paid ('paid').
DELETE FROM roll_rates WHERE month_end = {{ date_param('month_end') }};

INSERT INTO roll_rates (
    month_end, currency, from_bucket, to_bucket, amount, invoices, ledger_file_id
)
SELECT {{ date_param('month_end') }},
       p.currency,
       p.bucket,
       COALESCE(c.bucket, 'paid'),
       SUM(p.outstanding),
       COUNT(*),
       :ledger_file_id
FROM aging_snapshots p
LEFT JOIN aging_snapshots c
       ON c.invoice_id = p.invoice_id AND c.as_of_date = {{ date_param('month_end') }}
WHERE p.as_of_date = {{ date_param('previous_month_end') }}
GROUP BY p.currency, p.bucket, COALESCE(c.bucket, 'paid')
