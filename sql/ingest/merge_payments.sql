-- Merge the file's good payment rows: update the known ones (an empty optional value keeps
-- what the warehouse has), then insert the new ones. The join to invoices guarantees the
-- reference (see warehouse/schema.py); the caller refuses to commit if fewer rows are written
-- than the file's good rows.
UPDATE payments AS e
SET invoice_id = s.invoice_id,
    paid_date = s.paid_date,
    amount = {{ money('s.amount_cents') }},
    method = COALESCE(s.method, e.method),
    source_file_id = :file_id
FROM {{ stg }} AS s
WHERE s.payment_id = e.payment_id
  AND NOT s.held
  AND EXISTS (SELECT 1 FROM invoices i WHERE i.invoice_id = s.invoice_id);

INSERT INTO payments (payment_id, invoice_id, paid_date, amount, method, source_file_id)
SELECT s.payment_id, s.invoice_id, s.paid_date, {{ money('s.amount_cents') }}, s.method, :file_id
FROM {{ stg }} s
JOIN invoices i ON i.invoice_id = s.invoice_id
WHERE NOT s.held
  AND NOT EXISTS (SELECT 1 FROM payments e WHERE e.payment_id = s.payment_id)
