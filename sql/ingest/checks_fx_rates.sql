-- Checks of exchange-rate rows. Each statement returns problems; the rows they name are held
-- back before the next statement runs.

-- The reporting currency (the bound parameter :reporting_currency, from the policy) is what
-- every rate is expressed in: its own rate is 1 by definition, any other value is a mistake.
SELECT s.row_number,
       s.rate_id AS record_id,
       'rate' AS column_name,
       RTRIM(RTRIM(
{%- if dialect == 'sqlite' %}
           printf('%d.%010d', s.rate_e10 / 10000000000, s.rate_e10 % 10000000000)
{%- else %}
           CAST(CAST(CAST(s.rate_e10 AS NUMERIC(20, 0)) * 0.0000000001 AS NUMERIC(20, 10)) AS TEXT)
{%- endif %}
       , '0'), '.') AS value,
       s.currency || ' is the reporting currency: its rate is always 1' AS reason
FROM {{ stg }} s
WHERE NOT s.held
  AND s.currency = :reporting_currency
  AND s.rate_e10 <> 10000000000
