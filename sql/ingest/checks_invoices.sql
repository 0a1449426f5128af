{% import "ingest/_checks.sql" as checks %}
-- Checks of invoice rows against the warehouse. Each statement returns problems; the rows they
-- name are held back before the next statement runs.
{{ checks.unknown_reference(stg, 'invoice_id', 'customer_id', 'customer', 'customers') }};

-- An invoice may be corrected, but never below what has already been paid on it.
SELECT s.row_number,
       s.invoice_id AS record_id,
       'amount' AS column_name,
       {{ money_text('s.amount_cents') }} AS value,
       'amount is below the ' || {{ money_text('paid.paid_cents') }}
           || ' already paid on this invoice' AS reason
FROM {{ stg }} s
JOIN (
    SELECT p.invoice_id, SUM({{ cents('p.amount') }}) AS paid_cents
    FROM payments p
    WHERE EXISTS (SELECT 1 FROM {{ stg }} x WHERE x.invoice_id = p.invoice_id)
    GROUP BY p.invoice_id
) paid ON paid.invoice_id = s.invoice_id
WHERE NOT s.held
  AND s.amount_cents < paid.paid_cents
{%- if dialect == 'sqlite' %};

-- The embedded SQLite warehouse keeps money as 64-bit integer cents: every total the risk steps
-- add up (per currency at most) must stay below 2^63 cents. An invoice that would take its
-- currency's ledger beyond 90,000,000,000,000,000.00 is held back (PostgreSQL has no such
-- limit). Running totals are floats here on purpose: they must not overflow themselves, and
-- the margin to 2^63 dwarfs their rounding.
WITH book AS (
    SELECT currency, TOTAL(amount) AS cents
    FROM invoices
    WHERE invoice_id NOT IN (SELECT invoice_id FROM {{ stg }} WHERE NOT held)
    GROUP BY currency
),
staged AS (
    SELECT s.row_number, s.invoice_id, s.amount_cents,
           COALESCE(s.currency, c.currency) AS currency
    FROM {{ stg }} s
    JOIN customers c ON c.customer_id = s.customer_id
    WHERE NOT s.held
),
running AS (
    SELECT row_number, invoice_id, amount_cents, currency,
           TOTAL(amount_cents) OVER (
               PARTITION BY currency ORDER BY row_number
               ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
           ) AS running_cents
    FROM staged
)
SELECT r.row_number,
       r.invoice_id AS record_id,
       'amount' AS column_name,
       {{ money_text('r.amount_cents') }} AS value,
       'the embedded SQLite warehouse holds at most 90,000,000,000,000,000.00 ' || r.currency
           || ' of invoices in all; this one would go beyond it (use PostgreSQL for a larger '
           || 'book)' AS reason
FROM running r
LEFT JOIN book b ON b.currency = r.currency
WHERE COALESCE(b.cents, 0) + r.running_cents > 9000000000000000000.0
{%- endif %}
