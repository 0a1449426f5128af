-- The aging snapshot for one as-of date (docs/contract.md §5), replaced whole so a re-run is idempotent.
-- outstanding = amount - payments with paid_date <= as_of; days_past_due = as_of - due_date when
-- positive, else 0; one row per invoice issued on or before as_of with outstanding > 0.
-- Buckets and risk classes are rendered from the validated policy (receivables.config).
DELETE FROM aging_snapshots WHERE as_of_date = {{ date_param('as_of') }};

INSERT INTO aging_snapshots (
    as_of_date, invoice_id, customer_id, currency, amount, paid, outstanding, issue_date,
    due_date, days_past_due, bucket, risk_class, disputed
)
SELECT {{ date_param('as_of') }},
       a.invoice_id, a.customer_id, a.currency, a.amount, a.paid, a.amount - a.paid,
       a.issue_date, a.due_date, a.days_past_due,
       {{ band_case('a.days_past_due', buckets) }},
       {{ band_case('a.days_past_due', risk_classes) }},
       a.disputed
FROM (
    SELECT i.invoice_id, i.customer_id, i.currency, i.amount, i.issue_date, i.due_date,
           i.disputed,
           COALESCE(p.paid, 0) AS paid,
           CASE WHEN i.due_date < {{ date_param('as_of') }}
                THEN {{ days_between(date_param('as_of'), 'i.due_date') }}
                ELSE 0 END AS days_past_due
    FROM invoices i
    LEFT JOIN (
        SELECT invoice_id, SUM(amount) AS paid
        FROM payments
        WHERE paid_date <= {{ date_param('as_of') }}
        GROUP BY invoice_id
    ) p ON p.invoice_id = i.invoice_id
    WHERE i.issue_date <= {{ date_param('as_of') }}
) a
WHERE a.amount - a.paid > 0
