-- Customer-level five-category classification for one as-of date (DOMAIN.md): per customer and
-- currency, the worst class of its open invoices, and whether more than the configured share of
-- its outstanding is substandard or worse (then all its receivables are at least substandard).
DELETE FROM customer_risk_classes WHERE as_of_date = {{ date_param('as_of') }};

INSERT INTO customer_risk_classes (
    as_of_date, customer_id, currency, outstanding, substandard_or_worse, substandard_share,
    worst_days_past_due, risk_class, rule_applied
)
SELECT {{ date_param('as_of') }},
       c.customer_id,
       c.currency,
       c.outstanding,
       c.substandard_or_worse,
       c.share,
       c.worst_days_past_due,
       CASE
{%- for band in risk_classes %}
    {%- if band.max_days is none %} ELSE '{{ band.name }}'
    {%- else %} WHEN c.worst_days_past_due <= {{ band.max_days }} THEN '{{ band.name }}'{% endif %}
{%- endfor %} END,
       c.share > :threshold
FROM (
    SELECT a.customer_id,
           a.currency,
           SUM(a.outstanding) AS outstanding,
           SUM(CASE WHEN a.days_past_due >= {{ substandard_from }} THEN a.outstanding ELSE 0 END)
               AS substandard_or_worse,
           CAST(SUM(CASE WHEN a.days_past_due >= {{ substandard_from }} THEN a.outstanding
                         ELSE 0 END) AS DOUBLE PRECISION)
               / CAST(SUM(a.outstanding) AS DOUBLE PRECISION) AS share,
           MAX(a.days_past_due) AS worst_days_past_due
    FROM aging_snapshots a
    WHERE a.as_of_date = {{ date_param('as_of') }}
    GROUP BY a.customer_id, a.currency
) c
