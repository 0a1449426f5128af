{% import "evaluation/_ledger.sql" as ledger with context %}
-- The ledger side of one quarter's KPIs, per currency, from invoices and payments alone (so a
-- first run on a quarter-start date, or a backfill, gives what a year of daily runs would):
-- `opening` is the day before the quarter's first day, `start` its first day, `closing` its last.
-- Outstanding on a day = amount - payments with paid_date on or before it, for invoices issued
-- on or before it, counted when positive (the aging definition). Money comes out as whole cents.
WITH paid AS (
{{ ledger.paid_by_invoice() }}
), facts AS (
    SELECT i.currency, i.amount, i.issue_date, i.due_date,
           CASE WHEN i.issue_date <= {{ date_param('opening') }}
                THEN i.amount - COALESCE(p.by_opening, 0) ELSE 0 END AS open_then,
           i.amount - COALESCE(p.by_opening, 0) - COALESCE(p.in_quarter, 0) AS open_now,
           COALESCE(p.in_quarter, 0) AS paid_in_quarter,
           CASE WHEN i.issue_date <= {{ date_param('opening') }}
                 AND i.due_date < {{ date_param('opening') }}
                 AND i.amount - COALESCE(p.by_opening, 0) > 0
                THEN 1 ELSE 0 END AS overdue_then
    FROM invoices i
    LEFT JOIN paid p ON p.invoice_id = i.invoice_id
    WHERE i.issue_date <= {{ date_param('closing') }}
)
SELECT currency,
       {{ exact_cents('SUM(CASE WHEN open_then > 0 THEN open_then ELSE 0 END)') }} AS opening_ar,
       {{ exact_cents('SUM(CASE WHEN overdue_then = 1 THEN open_then ELSE 0 END)') }}
           AS opening_overdue,
       {{ exact_cents('SUM(CASE WHEN open_now > 0 THEN open_now ELSE 0 END)') }} AS closing_ar,
       {{ exact_cents("SUM(CASE WHEN open_now > 0 AND due_date < " ~ date_param('closing')
                      ~ " THEN open_now ELSE 0 END)") }} AS closing_overdue,
       {{ exact_cents("SUM(CASE WHEN open_now > 0 AND "
                      ~ band_case(days_between(date_param('closing'), 'due_date'), risk_classes)
                      ~ " = '" ~ loss_class ~ "' THEN open_now ELSE 0 END)") }} AS closing_loss,
       {{ exact_cents("SUM(CASE WHEN issue_date >= " ~ date_param('start')
                      ~ " THEN amount ELSE 0 END)") }} AS credit_sales,
       -- paid in the quarter on what was overdue at its opening, never more than was owed then
       {{ exact_cents('SUM(CASE WHEN overdue_then = 1 THEN (CASE WHEN paid_in_quarter < open_then
                                THEN paid_in_quarter ELSE open_then END) ELSE 0 END)') }}
           AS recovered,
       -- overdue at the opening and paid in full at the close (it cannot be current again:
       -- its due date has passed)
       {{ exact_cents('SUM(CASE WHEN overdue_then = 1 AND open_now <= 0 THEN open_then ELSE 0 END)') }}
           AS cured
FROM facts
GROUP BY currency
ORDER BY currency;
