-- Upsert the file's good collector rows. An empty optional value keeps what the warehouse has.
INSERT INTO collectors (collector_id, name, email, team, source_file_id)
SELECT s.collector_id, s.name, COALESCE(s.email, e.email), COALESCE(s.team, e.team), :file_id
FROM {{ stg }} s
LEFT JOIN collectors e ON e.collector_id = s.collector_id
WHERE NOT s.held
ON CONFLICT (collector_id) DO UPDATE SET
    name = excluded.name,
    email = excluded.email,
    team = excluded.team,
    source_file_id = excluded.source_file_id
