-- Customers with an open invoice on the as-of date per currency, and those with one past due.
SELECT currency,
       COUNT(DISTINCT customer_id) AS customers,
       COUNT(DISTINCT CASE WHEN days_past_due > 0 THEN customer_id END) AS overdue_customers
FROM aging_snapshots
WHERE as_of_date = {{ date_param('as_of') }}
GROUP BY currency
ORDER BY currency;
-- The same across currencies: a customer with invoices in two currencies counts once.
SELECT COUNT(DISTINCT customer_id) AS customers,
       COUNT(DISTINCT CASE WHEN days_past_due > 0 THEN customer_id END) AS overdue_customers
FROM aging_snapshots
WHERE as_of_date = {{ date_param('as_of') }};
