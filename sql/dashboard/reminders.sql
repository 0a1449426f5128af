-- The reminders planned from `since` to the as-of date, by whether the as-of date planned them
-- (`on_day`), status, refusing rule and provider: how many, how many SendGrid reported
-- delivered and opened, and how many bounced or were dropped (any such event of the Event
-- Webhook, whatever came after it: `undelivered`, the events legal escalation also reads as
-- "did not arrive").
SELECT CASE WHEN r.planned_on = {{ date_param('as_of') }} THEN 1 ELSE 0 END AS on_day,
       r.status,
       r.rule,
       r.provider,
       COUNT(*) AS reminders,
       SUM(CASE WHEN r.delivered_at IS NOT NULL THEN 1 ELSE 0 END) AS delivered,
       SUM(CASE WHEN r.opened_at IS NOT NULL THEN 1 ELSE 0 END) AS opened,
       SUM(CASE WHEN EXISTS (
               SELECT 1 FROM email_events e
               WHERE e.reminder_id = r.reminder_id
                 AND e.event IN ({% for event in undelivered %}'{{ event }}'{% if not loop.last %}, {% endif %}{% endfor %})
           ) THEN 1 ELSE 0 END) AS bounced
FROM reminders r
WHERE r.planned_on >= {{ date_param('since') }}
  AND r.planned_on <= {{ date_param('as_of') }}
GROUP BY on_day, r.status, r.rule, r.provider
ORDER BY on_day, r.status, r.rule, r.provider;
