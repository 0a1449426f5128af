-- Upsert the file's good customer rows. An empty optional value keeps what the warehouse has;
-- new customers get the contract's defaults (zh-CN, Asia/Shanghai, CNY, may be contacted).
INSERT INTO customers (
    customer_id, name, email, phone, locale, timezone, segment, credit_limit, currency,
    collector_id, do_not_contact, source_file_id
)
SELECT s.customer_id,
       s.name,
       COALESCE(s.email, e.email),
       COALESCE(s.phone, e.phone),
       COALESCE(s.locale, e.locale, :default_locale),
       COALESCE(s.timezone, e.timezone, :default_timezone),
       COALESCE(s.segment, e.segment),
       COALESCE({{ money('s.credit_limit_cents') }}, e.credit_limit),
       COALESCE(s.currency, e.currency, :default_currency),
       COALESCE(s.collector_id, e.collector_id),
       COALESCE(s.do_not_contact, e.do_not_contact, false),
       :file_id
FROM {{ stg }} s
LEFT JOIN customers e ON e.customer_id = s.customer_id
WHERE NOT s.held
ON CONFLICT (customer_id) DO UPDATE SET
    name = excluded.name,
    email = excluded.email,
    phone = excluded.phone,
    locale = excluded.locale,
    timezone = excluded.timezone,
    segment = excluded.segment,
    credit_limit = excluded.credit_limit,
    currency = excluded.currency,
    collector_id = excluded.collector_id,
    do_not_contact = excluded.do_not_contact,
    source_file_id = excluded.source_file_id
