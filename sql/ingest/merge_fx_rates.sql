-- Merge the file's good exchange rates: a rate already known for the date and currency is
-- replaced (a later file corrects it), the others are inserted. Staged rates are exact integer
-- units of 1e-10 (rate_e10): SQLite stores exactly those units, PostgreSQL a NUMERIC(20, 10),
-- reached by an exact decimal product (never through floating point).
{% set rate = 's.rate_e10' if dialect == 'sqlite'
   else '(CAST(s.rate_e10 AS NUMERIC(20, 0)) * 0.0000000001)' %}
UPDATE fx_rates AS e
SET rate = {{ rate }},
    source_file_id = :file_id
FROM {{ stg }} AS s
WHERE s.rate_date = e.rate_date
  AND s.currency = e.currency
  AND NOT s.held;

INSERT INTO fx_rates (rate_date, currency, rate, source_file_id)
SELECT s.rate_date, s.currency, {{ rate }}, :file_id
FROM {{ stg }} s
WHERE NOT s.held
  AND NOT EXISTS (
      SELECT 1 FROM fx_rates e WHERE e.rate_date = s.rate_date AND e.currency = s.currency
  )
