-- The warehouse lives beside Airflow's metadata database, with its own role.
CREATE ROLE receivables LOGIN PASSWORD 'receivables';
CREATE DATABASE receivables OWNER receivables;
