{#- What the quarter's SQL shares: each invoice's payments on or before the quarter's `opening`
    (the day before its first day) and after it up to `closing` (its last day). -#}
{% macro paid_by_invoice() -%}
    SELECT invoice_id,
           SUM(CASE WHEN paid_date <= {{ date_param('opening') }} THEN amount ELSE 0 END)
               AS by_opening,
           SUM(CASE WHEN paid_date > {{ date_param('opening') }} THEN amount ELSE 0 END)
               AS in_quarter
    FROM payments
    WHERE paid_date <= {{ date_param('closing') }}
    GROUP BY invoice_id
{%- endmacro %}
