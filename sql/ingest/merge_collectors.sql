-- Merge the file's good collector rows: update the known ones (an empty optional value keeps
-- what the warehouse has), then insert the new ones. Two plain statements rather than one
-- INSERT … ON CONFLICT: a bulk load is mostly new rows, and plain inserts are faster.
UPDATE collectors AS e
SET name = s.name,
    email = COALESCE(s.email, e.email),
    team = COALESCE(s.team, e.team),
    source_file_id = :file_id
FROM {{ stg }} AS s
WHERE s.collector_id = e.collector_id
  AND NOT s.held;

INSERT INTO collectors (collector_id, name, email, team, source_file_id)
SELECT s.collector_id, s.name, s.email, s.team, :file_id
FROM {{ stg }} s
WHERE NOT s.held
  AND NOT EXISTS (SELECT 1 FROM collectors e WHERE e.collector_id = s.collector_id)
