-- Per open invoice on the as-of date: its final risk class (raised to substandard when its
-- customer's rule applies) and its IFRS 9 provision: outstanding x the loss rate of its bucket
-- in its currency's provision matrix, rounded to the cent.
DELETE FROM invoice_risk WHERE as_of_date = {{ date_param('as_of') }};

INSERT INTO invoice_risk (
    as_of_date, invoice_id, customer_id, currency, segment, bucket, outstanding, risk_class,
    loss_rate, ecl
)
SELECT a.as_of_date,
       a.invoice_id,
       a.customer_id,
       a.currency,
       cu.segment,
       a.bucket,
       a.outstanding,
       CASE WHEN k.rule_applied AND a.days_past_due < {{ substandard_from }}
            THEN 'substandard' ELSE a.risk_class END,
       r.loss_rate,
       {{ money_times_rate('a.outstanding', 'r.loss_rate') }}
FROM aging_snapshots a
JOIN customer_risk_classes k
  ON k.as_of_date = a.as_of_date AND k.customer_id = a.customer_id AND k.currency = a.currency
JOIN provision_rates r
  ON r.as_of_date = a.as_of_date AND r.currency = a.currency AND r.bucket = a.bucket
LEFT JOIN customers cu ON cu.customer_id = a.customer_id
WHERE a.as_of_date = {{ date_param('as_of') }}
