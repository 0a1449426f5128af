-- Customers for the credit model, numbered 0..n-1 in id order (the arrays' index).
SELECT ROW_NUMBER() OVER (ORDER BY customer_id) - 1 AS idx,
       customer_id,
       {{ cents('credit_limit') }} AS credit_limit_cents,
       currency,
       segment
FROM customers
ORDER BY customer_id
