# Production image: the official Airflow image plus this project's locked dependencies.
# The repository itself is mounted at /opt/receivables by docker-compose.yml.
FROM apache/airflow:3.3.2-python3.11

# WeasyPrint draws the legal case files' PDFs with pango and embeds only the glyphs used
# (HarfBuzz's subsetter); Chinese text needs a font covering it.
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fontconfig fonts-wqy-microhei \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*
USER airflow

COPY --chown=airflow:root pyproject.toml uv.lock README.md /opt/receivables/
COPY --chown=airflow:root include /opt/receivables/include
RUN pip install --no-cache-dir "uv==0.13.9" \
 && cd /opt/receivables \
 && uv export --frozen --no-dev --no-hashes --no-emit-project -o /tmp/requirements.txt \
 && pip install --no-cache-dir -r /tmp/requirements.txt \
 && pip install --no-cache-dir --no-deps -e /opt/receivables
