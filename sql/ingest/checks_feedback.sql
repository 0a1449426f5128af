-- Checks of staff feedback rows. Each statement returns problems; the rows they name are held
-- back before the next statement runs.

-- A remark is dropped once it was made: one dated after the business date of the run (the bound
-- parameter :as_of) is a mistyped date, and would be shown in a quarter that has not happened.
SELECT s.row_number,
       s.feedback_id AS record_id,
       'date' AS column_name,
       CAST(s.date AS TEXT) AS value,
       'dated after the business date ' || CAST({{ date_param('as_of') }} AS TEXT)
           || ': feedback is dropped once it was given' AS reason
FROM {{ stg }} s
WHERE NOT s.held
  AND s.date > {{ date_param('as_of') }}
