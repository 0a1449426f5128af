-- Payments for the credit model as integers: invoice index, days since 1970-01-01, cents.
SELECT v.idx AS invoice_idx,
       {{ epoch_days('p.paid_date') }} AS paid_day,
       {{ cents('p.amount') }} AS amount_cents
FROM payments p
JOIN (SELECT invoice_id, ROW_NUMBER() OVER (ORDER BY invoice_id) - 1 AS idx FROM invoices) v
  ON v.invoice_id = p.invoice_id
