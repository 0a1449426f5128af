-- The risk warnings raised for the as-of date, by kind and severity.
SELECT kind, severity, COUNT(*) AS warnings
FROM risk_warnings
WHERE as_of_date = {{ date_param('as_of') }}
GROUP BY kind, severity
ORDER BY kind, severity;
