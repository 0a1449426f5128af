-- Merge the file's good staff feedback rows: a remark sent again under its id replaces the
-- earlier one (a correction), an empty optional value keeps what the warehouse has, and an
-- empty topic of a new remark is "other". Two plain statements rather than one
-- INSERT … ON CONFLICT, as for the other kinds.
UPDATE staff_feedback AS e
SET given_on = s.date,
    author = s.author,
    team = COALESCE(s.team, e.team),
    topic = COALESCE(s.topic, e.topic),
    text = s.text,
    source_file_id = :file_id
FROM {{ stg }} AS s
WHERE s.feedback_id = e.feedback_id
  AND NOT s.held;

INSERT INTO staff_feedback (feedback_id, given_on, author, team, topic, text, source_file_id)
SELECT s.feedback_id, s.date, s.author, s.team, COALESCE(s.topic, 'other'), s.text, :file_id
FROM {{ stg }} s
WHERE NOT s.held
  AND NOT EXISTS (SELECT 1 FROM staff_feedback e WHERE e.feedback_id = s.feedback_id)
