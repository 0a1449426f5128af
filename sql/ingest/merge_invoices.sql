-- Merge the file's good invoice rows: update the known ones (an empty optional value keeps
-- what the warehouse has), then insert the new ones, whose currency defaults to the
-- customer's. The join to customers guarantees the reference (see warehouse/schema.py); the
-- caller refuses to commit if fewer rows are written than the file's good rows.
UPDATE invoices AS e
SET customer_id = s.customer_id,
    issue_date = s.issue_date,
    due_date = s.due_date,
    amount = {{ money('s.amount_cents') }},
    currency = COALESCE(s.currency, e.currency),
    description = COALESCE(s.description, e.description),
    disputed = COALESCE(s.disputed, e.disputed),
    source_file_id = :file_id
FROM {{ stg }} AS s
WHERE s.invoice_id = e.invoice_id
  AND NOT s.held
  AND EXISTS (SELECT 1 FROM customers c WHERE c.customer_id = s.customer_id);

INSERT INTO invoices (
    invoice_id, customer_id, issue_date, due_date, amount, currency, description, disputed,
    source_file_id
)
SELECT s.invoice_id,
       s.customer_id,
       s.issue_date,
       s.due_date,
       {{ money('s.amount_cents') }},
       COALESCE(s.currency, c.currency),
       s.description,
       COALESCE(s.disputed, false),
       :file_id
FROM {{ stg }} s
JOIN customers c ON c.customer_id = s.customer_id
WHERE NOT s.held
  AND NOT EXISTS (SELECT 1 FROM invoices e WHERE e.invoice_id = s.invoice_id)
