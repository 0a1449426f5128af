{% import "ingest/_checks.sql" as checks %}
-- Checks of payment rows against the warehouse. Each statement returns problems; the rows they
-- name are held back before the next statement runs.
{{ checks.unknown_reference(stg, 'payment_id', 'invoice_id', 'invoice', 'invoices') }};

-- Payments never add up to more than the invoice: counted in paid_date order, earlier payments
-- first (a payment this file corrects counts with its new amount only). The payment that
-- crosses the amount, and any after it, are held back. Running totals are computed only for
-- the few invoices whose payments would exceed them in total.
WITH staged AS (
    SELECT invoice_id, SUM(amount_cents) AS staged_cents
    FROM {{ stg }}
    WHERE NOT held
    GROUP BY invoice_id
),
earlier AS (
    SELECT p.invoice_id, SUM({{ cents('p.amount') }}) AS paid_cents
    FROM staged k
    JOIN payments p ON p.invoice_id = k.invoice_id
    WHERE NOT EXISTS (SELECT 1 FROM {{ stg }} y WHERE y.payment_id = p.payment_id AND NOT y.held)
    GROUP BY p.invoice_id
),
overpaid AS (
    SELECT k.invoice_id, {{ cents('i.amount') }} AS amount_cents,
           COALESCE(e.paid_cents, 0) AS paid_cents
    FROM staged k
    JOIN invoices i ON i.invoice_id = k.invoice_id
    LEFT JOIN earlier e ON e.invoice_id = k.invoice_id
    WHERE COALESCE(e.paid_cents, 0) + k.staged_cents > {{ cents('i.amount') }}
),
running AS (
    SELECT s.row_number, s.payment_id, s.invoice_id, s.amount_cents,
           SUM(s.amount_cents) OVER (
               PARTITION BY s.invoice_id ORDER BY s.paid_date, s.row_number
               ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
           ) AS running_cents
    FROM {{ stg }} s
    WHERE NOT s.held
      AND s.invoice_id IN (SELECT invoice_id FROM overpaid)
)
SELECT r.row_number,
       r.payment_id AS record_id,
       'amount' AS column_name,
       {{ money_text('r.amount_cents') }} AS value,
       'payments would exceed the invoice amount of ' || {{ money_text('o.amount_cents') }}
           || ' (' || {{ money_text('o.paid_cents') }} || ' paid before this file, '
           || {{ money_text('o.paid_cents + r.running_cents') }}
           || ' with this payment)' AS reason
FROM running r
JOIN overpaid o ON o.invoice_id = r.invoice_id
WHERE o.paid_cents + r.running_cents > o.amount_cents
