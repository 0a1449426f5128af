{#- What the quarters' SQL shares: each invoice's payments dated on or before each of `days`
    (names of bound date parameters, earliest first), one column `paid_by_<day>` per day (NULL
    when the invoice has none by then), for invoices with a payment by the last of them. -#}
{% macro paid_by_invoice(days) -%}
    SELECT invoice_id
    {%- for day in days %},
           SUM(amount){% if not loop.last %} FILTER (WHERE paid_date <= {{ date_param(day) }}){% endif %}
               AS paid_by_{{ day }}
    {%- endfor %}
    FROM payments
    WHERE paid_date <= {{ date_param(days[-1]) }}
    GROUP BY invoice_id
{%- endmacro %}
