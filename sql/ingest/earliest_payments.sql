-- The earliest business date whose ledger the file's good rows change: a new payment from its
-- paid date, a corrected one from the earlier of its old and new paid dates.
SELECT MIN(CASE WHEN e.paid_date IS NOT NULL AND e.paid_date < s.paid_date
                THEN e.paid_date ELSE s.paid_date END) AS earliest
FROM {{ stg }} s
LEFT JOIN payments e ON e.payment_id = s.payment_id
WHERE NOT s.held
