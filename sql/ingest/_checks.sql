{#- Macros shared by the checks files (not a statement file of its own). -#}
{% macro unknown_reference(stg, record_id, column, parent_kind, parent_table) -%}
-- A reference to a row the warehouse does not hold; when the referenced row was itself
-- quarantined, the reason says where.
SELECT s.row_number,
       s.{{ record_id }} AS record_id,
       '{{ column }}' AS column_name,
       s.{{ column }} AS value,
       'unknown {{ column }}: no such {{ parent_kind }} in the warehouse or in an earlier file of this drop'
           || COALESCE(
               ' (its own row was quarantined: ' || q.file_name || ' row ' || q.row_number || ')',
               ''
           ) AS reason
FROM {{ stg }} s
LEFT JOIN (
    SELECT qr.record_id, MAX(f.file_name) AS file_name, MAX(qr.row_number) AS row_number
    FROM quarantined_rows qr
    JOIN ingested_files f ON f.file_id = qr.file_id
    WHERE f.kind = '{{ parent_table }}'
    GROUP BY qr.record_id
) q ON q.record_id = s.{{ column }}
WHERE NOT s.held
  AND NOT EXISTS (SELECT 1 FROM {{ parent_table }} x WHERE x.{{ column }} = s.{{ column }})
{%- endmacro %}
