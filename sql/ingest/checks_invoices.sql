{% import "ingest/_checks.sql" as checks %}
-- Checks of invoice rows against the warehouse. Each statement returns problems; the rows they
-- name are held back before the next statement runs.
{{ checks.unknown_reference(stg, 'invoice_id', 'customer_id', 'customer', 'customers') }};

-- An invoice may be corrected, but never below what has already been paid on it.
SELECT s.row_number,
       s.invoice_id AS record_id,
       'amount' AS column_name,
       {{ money_text('s.amount_cents') }} AS value,
       'amount is below the ' || {{ money_text('paid.paid_cents') }}
           || ' already paid on this invoice' AS reason
FROM {{ stg }} s
JOIN (
    SELECT p.invoice_id, SUM({{ cents('p.amount') }}) AS paid_cents
    FROM payments p
    WHERE EXISTS (SELECT 1 FROM {{ stg }} x WHERE x.invoice_id = p.invoice_id)
    GROUP BY p.invoice_id
) paid ON paid.invoice_id = s.invoice_id
WHERE NOT s.held
  AND s.amount_cents < paid.paid_cents
