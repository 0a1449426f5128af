# Production image: the official Airflow image plus this project's locked dependencies.
# The repository itself is mounted at /opt/receivables by docker-compose.yml.
FROM apache/airflow:3.3.2-python3.11

COPY --chown=airflow:root pyproject.toml uv.lock README.md /opt/receivables/
COPY --chown=airflow:root include /opt/receivables/include
RUN pip install --no-cache-dir "uv==0.13.9" \
 && cd /opt/receivables \
 && uv export --frozen --no-dev --no-hashes --no-emit-project -o /tmp/requirements.txt \
 && pip install --no-cache-dir -r /tmp/requirements.txt \
 && pip install --no-cache-dir --no-deps -e /opt/receivables
