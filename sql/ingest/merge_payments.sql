-- Upsert the file's good payment rows. An empty optional value keeps what the warehouse has.
INSERT INTO payments (payment_id, invoice_id, paid_date, amount, method, source_file_id)
SELECT s.payment_id,
       s.invoice_id,
       s.paid_date,
       {{ money('s.amount_cents') }},
       COALESCE(s.method, e.method),
       :file_id
FROM {{ stg }} s
LEFT JOIN payments e ON e.payment_id = s.payment_id
WHERE NOT s.held
ON CONFLICT (payment_id) DO UPDATE SET
    invoice_id = excluded.invoice_id,
    paid_date = excluded.paid_date,
    amount = excluded.amount,
    method = excluded.method,
    source_file_id = excluded.source_file_id
