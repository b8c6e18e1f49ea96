# multivac serve: GitHub's workflow_job / workflow_run webhooks in, records out.
#   docker build -t multivac .
#   docker run -d -p 8080:8080 -v multivac-state:/var/lib/multivac \
#     -e MULTIVAC_WEBHOOK_SECRET -e GITHUB_TOKEN \
#     -e INFLUX_URL -e INFLUX_TOKEN -e INFLUX_ORG -e INFLUX_BUCKET multivac
# See docs/serve.md. The image runs any other multivac command too:
#   docker run --rm -v multivac-state:/var/lib/multivac -e GITHUB_TOKEN multivac gather OWNER/REPO
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MULTIVAC_STATE_DIR=/var/lib/multivac

WORKDIR /src
COPY pyproject.toml README.md ./
COPY multivac ./multivac
# [fast]: uvloop and httptools for serve, Hyperscan for classification (all wheels)
RUN pip install ".[fast]" \
    && useradd --system --uid 10001 --home-dir /var/lib/multivac --create-home multivac

USER multivac
WORKDIR /var/lib/multivac
VOLUME ["/var/lib/multivac"]
EXPOSE 8080
# SIGTERM: requests in flight are answered, the worker's queue stays in the store,
# the last records are written (give it the time: docker stop -t 60)
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=8)"]

ENTRYPOINT ["multivac"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080", "--format", "influxdb"]
