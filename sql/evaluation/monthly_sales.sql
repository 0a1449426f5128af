-- Credit sales (amounts of invoices issued) per currency and calendar month, for the months
-- from `since` (a month's first day) to `closing` (a month's last day): the countback DSO.
SELECT currency,
       {% if dialect == 'sqlite' %}strftime('%Y-%m', issue_date){% else %}to_char(issue_date, 'YYYY-MM'){% endif %} AS month,
       {{ exact_cents('SUM(amount)') }} AS sales
FROM invoices
WHERE issue_date >= {{ date_param('since') }} AND issue_date <= {{ date_param('closing') }}
GROUP BY currency, month
ORDER BY currency, month;
