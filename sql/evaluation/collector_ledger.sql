{% import "evaluation/_ledger.sql" as ledger with context %}
-- Per collector and currency, what their customers' invoices owed overdue at the quarter's
-- opening and what was paid on them in the quarter, with the definitions of
-- quarter_ledger.sql's `opening_overdue` and `recovered`: `opening` is the day before the
-- quarter's first day, `closing` its last. An invoice is overdue at the opening when issued on
-- or before it, due before it and still owing then (amount - payments dated on or before it
-- > 0); payments dated after the opening up to `closing` count, each invoice at most up to
-- what it owed at the opening. A customer's collector is customers.collector_id when it names
-- a row of collectors, else NULL (the unassigned; an unknown customer too). Money comes out as
-- whole cents.
{% if dialect == 'sqlite' -%}
-- SQLite has no hash join: summing every payment of the ledger per invoice and joining that to
-- the invoices (an automatic index over millions of sums) costs more than looking up, through
-- the payments index, the payments of each invoice issued and due before the opening; those of
-- the few still owing then are looked up again for the quarter, once (`overdue` is
-- materialized, so that its sums are not looked up again wherever the query uses them).
WITH candidates AS (
    SELECT i.customer_id, i.currency,
           i.amount - (SELECT COALESCE(SUM(p.amount), 0) FROM payments p
                       WHERE p.invoice_id = i.invoice_id
                         AND p.paid_date <= {{ date_param('opening') }}) AS open_then,
           i.invoice_id
    FROM invoices i
    WHERE i.issue_date <= {{ date_param('opening') }}
      AND i.due_date < {{ date_param('opening') }}
), overdue AS MATERIALIZED (
    SELECT c.customer_id, c.currency, c.open_then,
           (SELECT COALESCE(SUM(p.amount), 0) FROM payments p
            WHERE p.invoice_id = c.invoice_id
              AND p.paid_date > {{ date_param('opening') }}
              AND p.paid_date <= {{ date_param('closing') }}) AS paid_in_quarter
    FROM candidates c
    WHERE c.open_then > 0
)
{%- else -%}
WITH paid AS (
{{ ledger.paid_by_invoice(['opening', 'closing']) }}
), overdue AS (
    SELECT i.customer_id, i.currency,
           i.amount - COALESCE(p.paid_by_opening, 0) AS open_then,
           COALESCE(p.paid_by_closing, 0) - COALESCE(p.paid_by_opening, 0) AS paid_in_quarter
    FROM invoices i
    LEFT JOIN paid p ON p.invoice_id = i.invoice_id
    WHERE i.issue_date <= {{ date_param('opening') }}
      AND i.due_date < {{ date_param('opening') }}
      AND i.amount - COALESCE(p.paid_by_opening, 0) > 0
)
{%- endif %}
SELECT k.collector_id,
       o.currency,
       {{ exact_cents('SUM(o.open_then)') }} AS overdue_at_opening,
       {{ exact_cents('SUM(CASE WHEN o.paid_in_quarter < o.open_then
                                THEN o.paid_in_quarter ELSE o.open_then END)') }} AS recovered
FROM overdue o
LEFT JOIN customers c ON c.customer_id = o.customer_id
LEFT JOIN collectors k ON k.collector_id = c.collector_id
GROUP BY k.collector_id, o.currency
ORDER BY k.collector_id, o.currency;
