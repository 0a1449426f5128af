-- The earliest business date whose ledger the file's good rows change: a new invoice from its
-- issue date, a corrected one from the earlier of its old and new issue dates. Month-end
-- snapshots on or after it are recomputed by the next risk run (aging.stale_or_missing).
SELECT MIN(CASE WHEN e.issue_date IS NOT NULL AND e.issue_date < s.issue_date
                THEN e.issue_date ELSE s.issue_date END) AS earliest
FROM {{ stg }} s
LEFT JOIN invoices e ON e.invoice_id = s.invoice_id
WHERE NOT s.held
