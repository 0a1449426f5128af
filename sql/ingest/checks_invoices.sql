-- Checks of invoice rows against the warehouse. Each statement returns problems; the rows they
-- name are held back before the next statement runs.
SELECT s.row_number,
       s.invoice_id AS record_id,
       'customer_id' AS column_name,
       s.customer_id AS value,
       'unknown customer_id: no such customer in the warehouse or in an earlier file of this drop'
           || COALESCE(
               ' (its own row was quarantined: ' || q.file_name || ' row ' || q.row_number || ')',
               ''
           ) AS reason
FROM {{ stg }} s
LEFT JOIN (
    SELECT qr.record_id, MAX(f.file_name) AS file_name, MAX(qr.row_number) AS row_number
    FROM quarantined_rows qr
    JOIN ingested_files f ON f.file_id = qr.file_id
    WHERE f.kind = 'customers'
    GROUP BY qr.record_id
) q ON q.record_id = s.customer_id
WHERE NOT s.held
  AND NOT EXISTS (SELECT 1 FROM customers x WHERE x.customer_id = s.customer_id);

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
