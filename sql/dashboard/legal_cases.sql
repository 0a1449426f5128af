-- The legal cases opened up to the as-of date, by their status as it stands now and currency:
-- how many, and their claims (principal + late interest) in whole cents.
SELECT status, currency, COUNT(*) AS cases, {{ exact_cents('SUM(amount)') }} AS claimed
FROM legal_cases
WHERE opened_on <= {{ date_param('as_of') }}
GROUP BY status, currency
ORDER BY status, currency;
