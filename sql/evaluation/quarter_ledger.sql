{% import "evaluation/_ledger.sql" as ledger with context %}
-- The ledger side of the KPIs of one or more quarters, per quarter and currency, from invoices
-- and payments alone (so a first run on a quarter-start date, or a backfill, gives what a year of
-- daily runs would), in one pass over both tables however many quarters there are.
--
-- `days` are the names of the bound dates the quarters need, earliest first: every quarter's
-- opening (the day before its first day) and closing (its last day). `quarters` gives, for each
-- quarter in order (`quarter` 0, 1, …), the names of its `opening` and `closing` among `days`
-- and of its first day, `start`.
--
-- Outstanding on a day = amount - payments with paid_date on or before it, for invoices issued
-- on or before it, counted when positive (the aging definition). An invoice issued and settled
-- by a quarter's opening adds nothing to any of the quarter's figures: `owed` keeps the invoices
-- issued by the last closing but those issued and settled by the first opening (the earliest
-- day), and each quarter reads, of those, the ones issued by its closing but not issued and
-- settled by its opening. So a currency whose invoices issued by a quarter's closing were all
-- settled by its opening has no row for that quarter (its figures are all zero; the caller
-- knows the book from its sales). Arithmetic is on whole cents (64-bit integers), so money is
-- exact; the sums come out as whole cents.
WITH paid AS (
{{ ledger.paid_by_invoice(days) }}
), owed AS (
    SELECT i.currency, {{ cents('i.amount') }} AS amount, i.issue_date, i.due_date
    {%- for day in days %},
           {{ cents('COALESCE(p.paid_by_%s, 0)' % day) }} AS paid_by_{{ day }}
    {%- endfor %}
    FROM invoices i
    LEFT JOIN paid p ON p.invoice_id = i.invoice_id
    WHERE i.issue_date <= {{ date_param(days[-1]) }}
      AND (i.issue_date > {{ date_param(days[0]) }}
           OR i.amount - COALESCE(p.paid_by_{{ days[0] }}, 0) > 0)
)
{%- for q in quarters %}
{%- set opening, start, closing = date_param(q.opening), date_param(q.start), date_param(q.closing) %}
{% if not loop.first %}UNION ALL
{% endif -%}
SELECT {{ loop.index0 }} AS quarter,
       currency,
       SUM(CASE WHEN open_then > 0 THEN open_then ELSE 0 END) AS opening_ar,
       SUM(CASE WHEN overdue_then = 1 THEN open_then ELSE 0 END) AS opening_overdue,
       SUM(CASE WHEN open_now > 0 THEN open_now ELSE 0 END) AS closing_ar,
       SUM(CASE WHEN open_now > 0 AND due_date < {{ closing }} THEN open_now ELSE 0 END)
           AS closing_overdue,
       SUM(CASE WHEN open_now > 0
                 AND {{ band_case(days_between(closing, 'due_date'), risk_classes) }} = '{{ loss_class }}'
                THEN open_now ELSE 0 END) AS closing_loss,
       SUM(CASE WHEN issue_date >= {{ start }} THEN amount ELSE 0 END) AS credit_sales,
       -- paid in the quarter on what was overdue at its opening, never more than was owed then
       SUM(CASE WHEN overdue_then = 1 THEN (CASE WHEN paid_in_quarter < open_then
                THEN paid_in_quarter ELSE open_then END) ELSE 0 END) AS recovered,
       -- overdue at the opening and paid in full at the close (it cannot be current again:
       -- its due date has passed)
       SUM(CASE WHEN overdue_then = 1 AND open_now <= 0 THEN open_then ELSE 0 END) AS cured
FROM (
    SELECT currency, amount, issue_date, due_date,
           CASE WHEN issue_date <= {{ opening }} THEN amount - paid_by_{{ q.opening }} ELSE 0 END
               AS open_then,
           amount - paid_by_{{ q.closing }} AS open_now,
           paid_by_{{ q.closing }} - paid_by_{{ q.opening }} AS paid_in_quarter,
           CASE WHEN issue_date <= {{ opening }}
                 AND due_date < {{ opening }}
                 AND amount - paid_by_{{ q.opening }} > 0
                THEN 1 ELSE 0 END AS overdue_then
    FROM owed
    WHERE issue_date <= {{ closing }}
      AND (issue_date > {{ opening }} OR amount - paid_by_{{ q.opening }} > 0)
) facts
GROUP BY currency
{%- endfor %}
ORDER BY quarter, currency;
