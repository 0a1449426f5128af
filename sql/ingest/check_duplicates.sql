-- Every copy of an id that appears more than once in one file is held back: which copy is the
-- right one cannot be known. Returns one problem per copy.
SELECT s.row_number,
       s.{{ id }} AS record_id,
       '{{ id }}' AS column_name,
       s.{{ id }} AS value,
       '{{ id }} appears ' || d.copies || ' times in this file; every copy is held back' AS reason
FROM {{ stg }} s
JOIN (
    SELECT {{ id }}, COUNT(*) AS copies
    FROM {{ stg }}
    WHERE {{ id }} IS NOT NULL
    GROUP BY {{ id }}
    HAVING COUNT(*) > 1
) d ON d.{{ id }} = s.{{ id }}
