-- Invoices for the credit model as integers: customer index, days since 1970-01-01, cents;
-- numbered 0..n-1 in id order (the index payments refer to).
SELECT ROW_NUMBER() OVER (ORDER BY i.invoice_id) - 1 AS idx,
       c.idx AS customer_idx,
       {{ epoch_days('i.issue_date') }} AS issue_day,
       {{ epoch_days('i.due_date') }} AS due_day,
       {{ cents('i.amount') }} AS amount_cents,
       CASE WHEN i.disputed THEN 1 ELSE 0 END AS disputed
FROM invoices i
JOIN (SELECT customer_id, ROW_NUMBER() OVER (ORDER BY customer_id) - 1 AS idx FROM customers) c
  ON c.customer_id = i.customer_id
ORDER BY i.invoice_id
