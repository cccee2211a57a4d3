# The dsgo-node image: every party runs the same program (`dsgo serve`) with its own node.toml.
# Used by compose.yaml; `docker build -t dsgo-node .` builds it alone.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies and the package first, so a change to the examples does not reinstall them.
# node/static/vendor (the pages' YASGUI and Swagger UI) is made by `make assets` on the host
# before the build; the image then serves them like the rest of the package data.
COPY pyproject.toml README.md ./
COPY node ./node
COPY trust ./trust
COPY connectors ./connectors
COPY vocab ./vocab
# The postgres extra (psycopg) for state.backend = "postgresql", as compose's builder hosts use.
RUN pip install ".[postgres]"

# The demo's source data (IFC model, BAG extract, sensor readings) for the compose `setup` service.
COPY examples ./examples

# Run unprivileged; the party directories exist (owned by that user) so named volumes mounted
# there start with the right owner.
RUN useradd --create-home --uid 10001 dsgo \
    && mkdir -p /srv/pki /srv/registry/data /srv/builder/data /srv/renovator/data /srv/auditor/data \
    && chown -R dsgo:dsgo /srv
USER dsgo

EXPOSE 8000
ENV DSGO_SERVER_HOST=0.0.0.0 \
    DSGO_SERVER_PORT=8000

ENTRYPOINT ["dsgo"]
CMD ["--help"]
