-- Upsert the file's good invoice rows. The currency defaults to the customer's; an empty
-- optional value keeps what the warehouse has.
INSERT INTO invoices (
    invoice_id, customer_id, issue_date, due_date, amount, currency, description, disputed,
    source_file_id
)
SELECT s.invoice_id,
       s.customer_id,
       s.issue_date,
       s.due_date,
       {{ money('s.amount_cents') }},
       COALESCE(s.currency, e.currency, c.currency),
       COALESCE(s.description, e.description),
       COALESCE(s.disputed, e.disputed, false),
       :file_id
FROM {{ stg }} s
JOIN customers c ON c.customer_id = s.customer_id
LEFT JOIN invoices e ON e.invoice_id = s.invoice_id
WHERE NOT s.held
ON CONFLICT (invoice_id) DO UPDATE SET
    customer_id = excluded.customer_id,
    issue_date = excluded.issue_date,
    due_date = excluded.due_date,
    amount = excluded.amount,
    currency = excluded.currency,
    description = excluded.description,
    disputed = excluded.disputed,
    source_file_id = excluded.source_file_id
