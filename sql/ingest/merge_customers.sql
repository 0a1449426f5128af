-- Merge the file's good customer rows: update the known ones (an empty optional value keeps
-- what the warehouse has), then insert the new ones with the contract's defaults (zh-CN,
-- Asia/Shanghai, CNY, may be contacted).
UPDATE customers AS e
SET name = s.name,
    email = COALESCE(s.email, e.email),
    phone = COALESCE(s.phone, e.phone),
    locale = COALESCE(s.locale, e.locale),
    timezone = COALESCE(s.timezone, e.timezone),
    segment = COALESCE(s.segment, e.segment),
    credit_limit = COALESCE({{ money('s.credit_limit_cents') }}, e.credit_limit),
    currency = COALESCE(s.currency, e.currency),
    collector_id = COALESCE(s.collector_id, e.collector_id),
    do_not_contact = COALESCE(s.do_not_contact, e.do_not_contact),
    source_file_id = :file_id
FROM {{ stg }} AS s
WHERE s.customer_id = e.customer_id
  AND NOT s.held;

INSERT INTO customers (
    customer_id, name, email, phone, locale, timezone, segment, credit_limit, currency,
    collector_id, do_not_contact, source_file_id
)
SELECT s.customer_id,
       s.name,
       s.email,
       s.phone,
       COALESCE(s.locale, :default_locale),
       COALESCE(s.timezone, :default_timezone),
       s.segment,
       {{ money('s.credit_limit_cents') }},
       COALESCE(s.currency, :default_currency),
       s.collector_id,
       COALESCE(s.do_not_contact, false),
       :file_id
FROM {{ stg }} s
WHERE NOT s.held
  AND NOT EXISTS (SELECT 1 FROM customers e WHERE e.customer_id = s.customer_id)
