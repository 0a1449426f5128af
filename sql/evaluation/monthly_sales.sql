-- Credit sales (amounts of invoices issued) per currency and calendar month ('YYYY-MM'), for the
-- months from `since` (a month's first day) to `closing` (a month's last day): the countback
-- DSO's months of every quarter read at once. A currency's invoices issued before `since` add up
-- to one row whose month is NULL, so every currency with an invoice issued by `closing` has a
-- row, and its earliest one tells from when its book exists. Money comes out as whole cents.
-- (SQLite keeps a DATE as ISO text, YYYY-MM-DD: its month is its first seven characters.)
SELECT currency,
       CASE WHEN issue_date >= {{ date_param('since') }}
            THEN {% if dialect == 'sqlite' %}substr(issue_date, 1, 7){% else %}to_char(issue_date, 'YYYY-MM'){% endif %}
       END AS month,
       {{ exact_cents('SUM(amount)') }} AS sales
FROM invoices
WHERE issue_date <= {{ date_param('closing') }}
GROUP BY currency, month
ORDER BY currency, month;
