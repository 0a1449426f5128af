-- Roll observations for one pair of month-ends (the earlier one `earlier`, the later one
-- `later`), for the buckets whose roll is observed over that many months: per currency and
-- bucket at the earlier month-end, the outstanding then, and the
-- part of it whose invoice sits in a worse bucket at the later month-end. A paid invoice (no
-- longer in the later snapshot) did not roll.
SELECT p.currency,
       p.bucket,
       SUM(p.outstanding) AS base,
       SUM(CASE WHEN c.bucket IS NOT NULL
                 AND {{ band_rank('c.bucket', buckets) }} > {{ band_rank('p.bucket', buckets) }}
                THEN p.outstanding ELSE 0 END) AS rolled
FROM aging_snapshots p
LEFT JOIN aging_snapshots c
       ON c.invoice_id = p.invoice_id AND c.as_of_date = {{ date_param('later') }}
WHERE p.as_of_date = {{ date_param('earlier') }}
  AND p.bucket IN ({% for b in bucket_names %}'{{ b }}'{% if not loop.last %}, {% endif %}{% endfor %})
GROUP BY p.currency, p.bucket
